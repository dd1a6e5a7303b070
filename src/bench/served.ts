/**
 * `lisa-bot serve` as the memory scenarios run it: its own process, as a user
 * starts it, with only the web chat on a free port, the given pack and a
 * throw-away session store; its resident memory read from /proc, and turns
 * sent through the web API as the page sends them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServedOptions {
  /** The repository, where src/bin.js is. */
  root: string;
  pack: string;
  /** Extra environment for the server (e.g. MALLOC_ARENA_MAX to compare allocators). */
  env?: NodeJS.ProcessEnv;
}

export interface Served {
  url: string;
  /** VmRSS (current) or VmHWM (peak so far) in MB; undefined where /proc is not available. */
  memory(field: 'VmRSS' | 'VmHWM'): Promise<number | undefined>;
  /** The malloc the server runs on: jemalloc when it is mapped into the process; undefined where /proc is not available. */
  allocator(): Promise<'jemalloc' | 'system' | undefined>;
  /** One turn through the web API, as the page does it: upload, then poll until it is answered. */
  turn(image: Uint8Array, file?: { name: string; type: string }): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the server and resolves once its web chat listens. */
export async function startServed(options: ServedOptions): Promise<Served> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-bench-serve-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LISABOT_MODEL_PATH: options.pack,
    LISABOT_MODEL_PROVIDERS: '["cpu"]',
    LISABOT_WEB_HOST: '127.0.0.1',
    LISABOT_WEB_PORT: '0',
    LISABOT_STORE_URL: `sqlite://${path.join(dir, 'sessions.sqlite')}`,
    LISABOT_LOG_LEVEL: 'info',
    ...options.env,
  };
  // Only the web chat: a token in the caller's environment must not connect a bench run to Discord or Slack.
  for (const secret of ['DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET']) delete env[secret];
  // Run as a program, as `lisa-bot serve` is, so that it gets the allocator users get (src/bin.js's
  // shell lines: jemalloc when installed); that shell finds `node` on PATH, this Node first.
  env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${env.PATH ?? ''}`;
  const child = spawn(path.join(options.root, 'src/bin.js'), ['serve'], { cwd: options.root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const url = await readyUrl(child, 120_000);
    return { url, memory: (field) => procStatus(child.pid!, field), allocator: () => allocatorOf(child.pid!), turn: (image, file) => oneTurn(url, image, file), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function allocatorOf(pid: number): Promise<'jemalloc' | 'system' | undefined> {
  try {
    return (await readFile(`/proc/${pid}/maps`, 'utf8')).includes('libjemalloc') ? 'jemalloc' : 'system';
  } catch {
    return undefined;
  }
}

/** Resolves with the web chat's URL from the JSON log line that announces it. */
function readyUrl(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let log = '';
    const timer = setTimeout(() => reject(new Error(`lisa-bot serve was not ready after ${timeoutMs} ms:\n${log.slice(-2000)}`)), timeoutMs);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString('utf8');
      buffered += chunk.toString('utf8');
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as { surface?: string; url?: string };
          if (entry.surface === 'web' && entry.url) {
            clearTimeout(timer);
            resolve(entry.url);
          }
        } catch {
          // Not a log line.
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`lisa-bot serve exited (${code}) before it was ready:\n${log.slice(-2000)}`));
    });
  });
}

async function oneTurn(url: string, image: Uint8Array, file = { name: 'photo.jpg', type: 'image/jpeg' }): Promise<void> {
  const form = new FormData();
  form.set('question', 'Please segment the red object in this picture.');
  form.set('image', new Blob([image], { type: file.type }), file.name);
  const posted = await fetch(new URL('/api/turns', url), { method: 'POST', body: form });
  if (posted.status !== 202) throw new Error(`POST /api/turns answered ${posted.status}: ${await posted.text()}`);
  const { turnId } = (await posted.json()) as { turnId: string };
  const cookie = (posted.headers.get('set-cookie') ?? '').split(';')[0]!;
  for (let i = 0; i < 600; i++) {
    const view = (await (await fetch(new URL(`/api/turns/${turnId}`, url), { headers: { cookie } })).json()) as { state: string };
    if (view.state === 'done') return;
    if (view.state === 'error') throw new Error(`the turn failed: ${JSON.stringify(view)}`);
    await sleep(100);
  }
  throw new Error('the turn was not answered within a minute');
}
