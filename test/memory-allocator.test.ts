/**
 * `lisa-bot` run as a program starts Node on jemalloc when it is installed
 * (issue 17, item 3; src/bin.js, docs/memory.md), in the same process: the pid
 * that a supervisor signals, stdin and the exit code are Node's own. Each test
 * runs the executable itself (its shell lines), not `node src/bin.js`.
 */
import { type ChildProcess, execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cli } from './helpers/cli.js';
import { makeToyPack } from './helpers/toy.js';

/** Whether the dynamic linker knows libjemalloc.so.2 (Debian/Ubuntu: libjemalloc2). */
function jemallocInstalled(): boolean {
  try {
    return /\blibjemalloc\.so\.2\b/.test(execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

const installed = jemallocInstalled();
if (!installed) {
  // Without the library only the fallback (the system allocator) is checked here; CI must check both.
  if (process.env.CI === 'true') throw new Error('libjemalloc2 is required in CI (apt install libjemalloc2)');
  console.warn('libjemalloc2 is not installed (apt install libjemalloc2): checking only that lisa-bot runs on the system allocator');
}

let dir: string;
let pack: { dir: string; cleanup: () => Promise<void> };
let red: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-allocator-'));
  pack = await makeToyPack();
  red = path.join(dir, 'red.png');
  await writeFile(red, await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer());
  // The shell finds `node` on PATH, as `#!/usr/bin/env node` did: this Node first.
  const cleaned = { ...process.env };
  for (const name of ['LD_PRELOAD', 'MALLOC_CONF', 'LISABOT_ALLOCATOR']) delete cleaned[name];
  env = { ...cleaned, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}`, LISABOT_STORE_URL: `sqlite://${path.join(dir, 'sessions.sqlite')}` };
}, 120_000);
afterAll(async () => {
  await pack?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Runs src/bin.js as a program (its #! line), with stdin left open for the caller. */
function runProgram(args: string[], extraEnv: NodeJS.ProcessEnv = {}, cwd?: string): Running {
  let stdout = '';
  let stderr = '';
  const child = execFile(BIN, args, { env: { ...env, ...extraEnv }, cwd }, () => undefined);
  child.stdout!.on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** The process once the shell has replaced itself with Node (same pid): its memory maps and environment. */
async function afterExec(pid: number): Promise<{ maps: string; environ: Map<string, string> }> {
  for (let i = 0; i < 400; i++) {
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const threads = Number(/^Threads:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    // Node runs bin.js once the shell (argv[0] /bin/sh) has exec'd it, and has passed the dynamic linker
    // once it starts its threads. (Just after the fork the pid is still a copy of this test's Node.)
    if (argv[0] !== '/bin/sh' && argv[1] === BIN && threads > 1) {
      const maps = await readFile(`/proc/${pid}/maps`, 'utf8');
      const environ = new Map((await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter(Boolean).map((entry) => {
        const at = entry.indexOf('=');
        return [entry.slice(0, at), entry.slice(at + 1)] as [string, string];
      }));
      return { maps, environ };
    }
    await sleep(25);
  }
  throw new Error(`process ${pid} never became node`);
}

const askFromStdin = () => ['ask', '--model', pack.dir, '--image', red, '-'];

describe('lisa-bot run as a program', () => {
  it(installed ? 'runs on jemalloc, with idle purging, and stdin reaches `ask -`' : 'runs on the system allocator where jemalloc is not installed', async () => {
    const run = runProgram(askFromStdin());
    const { maps, environ } = await afterExec(run.child.pid!);
    expect(maps.includes('libjemalloc')).toBe(installed);
    if (installed) expect(environ.get('MALLOC_CONF')).toBe('background_thread:true,dirty_decay_ms:1000');
    run.child.stdin!.end('segment the red thing\n');
    const result = await run.done;
    expect(result.stderr).toBe('');
    expect(result.stdout.split('\n')[0]).toBe('Sure, it is [mask 1].');
    expect(result.code).toBe(0);
  });

  it('LISABOT_ALLOCATOR=system keeps the system allocator, and is no config error', async () => {
    const run = runProgram(askFromStdin(), { LISABOT_ALLOCATOR: 'system' });
    const { maps, environ } = await afterExec(run.child.pid!);
    expect(maps).not.toContain('libjemalloc');
    expect(environ.has('LD_PRELOAD')).toBe(false);
    run.child.stdin!.end('segment the red thing\n');
    const result = await run.done;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it("keeps the user's own LD_PRELOAD and MALLOC_CONF as they are", async () => {
    const run = runProgram(askFromStdin(), { LD_PRELOAD: '', MALLOC_CONF: 'narenas:2' });
    const { maps, environ } = await afterExec(run.child.pid!);
    expect(maps).not.toContain('libjemalloc');
    expect(environ.get('LD_PRELOAD')).toBe('');
    expect(environ.get('MALLOC_CONF')).toBe('narenas:2');
    run.child.stdin!.end('segment the red thing\n');
    expect((await run.done).code).toBe(0);
  });

  it('a signal reaches lisa-bot itself: the pid the caller holds is Node, not a wrapper', async () => {
    const run = runProgram(askFromStdin());
    await afterExec(run.child.pid!);
    run.child.kill('SIGTERM');
    const result = await run.done;
    expect(result.signal).toBe('SIGTERM');
    expect(result.stdout).toBe('');
  });

  it('exit codes pass through: a refused question is exit 2 with one line', async () => {
    const run = runProgram(['ask', '--model', pack.dir, '--image', red, 'a'.repeat(3000)]);
    run.child.stdin!.end();
    const result = await run.done;
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/The question is too long/);
  });

  it('an unknown LISABOT_ALLOCATOR is refused (exit 2), as `node src/bin.js` refuses it', async () => {
    const run = runProgram(['--version'], { LISABOT_ALLOCATOR: 'tcmalloc' });
    run.child.stdin!.end();
    const result = await run.done;
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^LISABOT_ALLOCATOR must be auto \(jemalloc when installed\) or system, not "tcmalloc"\.$/m);
    const direct = await cli(['--version'], { LISABOT_ALLOCATOR: 'tcmalloc' });
    expect(direct.code).toBe(2);
    expect(direct.stderr).toBe(result.stderr);
  });

  it('LISABOT_ALLOCATOR in .env is named as having no effect, not refused as an unknown setting', async () => {
    const cwd = await mkdtemp(path.join(dir, 'envfile-'));
    await writeFile(path.join(cwd, '.env'), 'LISABOT_ALLOCATOR=system\n');
    const run = runProgram(askFromStdin(), {}, cwd);
    const { maps } = await afterExec(run.child.pid!);
    expect(maps.includes('libjemalloc')).toBe(installed);
    run.child.stdin!.end('segment the red thing\n');
    const result = await run.done;
    expect(result.stderr).toMatch(/^LISABOT_ALLOCATOR in \.env has no effect: .* Set it in the environment\.$/m);
    expect(result.stdout.split('\n')[0]).toBe('Sure, it is [mask 1].');
    expect(result.code).toBe(0);
  });
});
