/**
 * The processes one scale-out benchmark phase runs: `lisa-bot serve` (with a
 * queue URL, or in-process for comparison) and `lisa-bot worker`s, each from a
 * config file written here, as an operator would start them. Everything
 * started is tracked so that it is all stopped and removed however the run
 * ends (an error, Ctrl-C, the process exiting).
 */
import { rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LisaProcess } from './lisa-process.js';

export interface PhaseConfig {
  /** Where the config file (and the in-process serve's SQLite store) go. */
  dir: string;
  pack: string;
  /** redis://…: serve queues turns for workers; undefined: serve runs them itself. */
  redisUrl?: string;
  queueName: string;
  lockMs?: number;
  stalledIntervalMs?: number;
  /** model.cpuThreads; undefined keeps the default (one per core). */
  cpuThreads?: number;
  /** Waiting turns allowed: a burst must not be refused as "busy". */
  maxQueue: number;
}

/** Writes the phase's config file and returns its path. */
export async function writePhaseConfig(phase: PhaseConfig): Promise<string> {
  const file = path.join(phase.dir, `${phase.queueName}.yaml`);
  const store = phase.redisUrl ?? `sqlite://${path.join(phase.dir, `${phase.queueName}.sqlite`)}`;
  const lines = [
    'model:',
    `  path: ${JSON.stringify(phase.pack)}`,
    '  providers: [cpu]',
    ...(phase.cpuThreads === undefined ? [] : [`  cpuThreads: ${phase.cpuThreads}`]),
    'store:',
    `  url: ${JSON.stringify(store)}`,
    ...(phase.redisUrl
      ? [
          'queue:',
          `  url: ${JSON.stringify(phase.redisUrl)}`,
          `  name: ${phase.queueName}`,
          ...(phase.lockMs === undefined ? [] : [`  lockMs: ${phase.lockMs}`]),
          ...(phase.stalledIntervalMs === undefined ? [] : [`  stalledIntervalMs: ${phase.stalledIntervalMs}`]),
          // No health servers: the benchmark reads logs and /proc, and fixed ports would collide.
          'worker:',
          '  metricsPort: 0',
        ]
      : []),
    'serve:',
    '  metricsPort: 0',
    'web:',
    '  host: 127.0.0.1',
    '  port: 0',
    'limits:',
    '  perUserPerMinute: 100000',
    `  maxQueue: ${phase.maxQueue}`,
    'log:',
    '  level: info',
    '',
  ];
  await writeFile(file, lines.join('\n'));
  return file;
}

/**
 * The caller's LISABOT_* variables would override the config file, and a chat
 * token would connect a benchmark run to Discord or Slack: both are left out.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of Object.keys(process.env)) if (key.startsWith('LISABOT_')) env[key] = undefined;
  for (const secret of ['DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET']) env[secret] = undefined;
  return env;
}

/** Every process and directory a benchmark run started or made, for cleanup. */
export class Started {
  private readonly processes = new Set<LisaProcess>();
  private readonly pids = new Set<number>();
  private readonly dirs = new Set<string>();
  private readonly stoppers = new Set<() => Promise<void>>();

  process(proc: LisaProcess): LisaProcess {
    this.processes.add(proc);
    return proc;
  }

  /** Another child (redis-server): its pid for a last-moment kill, and how to stop it. */
  other(pid: number, stop: () => Promise<void>): void {
    this.pids.add(pid);
    this.stoppers.add(stop);
  }

  dir(dir: string): string {
    this.dirs.add(dir);
    return dir;
  }

  /** Stops the given processes (SIGKILL: a benchmark keeps nothing) and forgets them. */
  async stop(procs: readonly LisaProcess[]): Promise<void> {
    await Promise.all(procs.map((proc) => proc.stop()));
    for (const proc of procs) this.processes.delete(proc);
  }

  async stopAll(): Promise<void> {
    await this.stop([...this.processes]);
    for (const stop of this.stoppers) await stop();
    this.stoppers.clear();
    this.pids.clear();
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
    this.dirs.clear();
  }

  /** For process exit and signals, where nothing can be awaited. */
  stopAllNow(): void {
    for (const proc of this.processes) proc.kill('SIGKILL');
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}

export async function startServe(configFile: string, started: Started, name = 'serve'): Promise<{ proc: LisaProcess; url: string }> {
  const proc = started.process(new LisaProcess(name, ['serve', '--config', configFile], childEnv()));
  const ready = await proc.waitFor((line) => line.surface === 'web' && typeof line.url === 'string', 'web chat ready');
  return { proc, url: String(ready.url).replace(/\/$/, '') };
}

export async function startWorker(configFile: string, started: Started, name: string): Promise<LisaProcess> {
  const proc = started.process(new LisaProcess(name, ['worker', '--config', configFile], childEnv()));
  await proc.waitFor((line) => line.msg.startsWith('worker ready'), 'worker ready');
  return proc;
}
