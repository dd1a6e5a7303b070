/**
 * The scale-out benchmark's measurements (issue 15's closing note): turns
 * per second through `lisa-bot serve` with 1, 2, … `lisa-bot worker`s on one
 * redis-server, next to serve running the turns itself; the resident memory
 * of serve and the workers; and the time a turn takes to be answered after
 * its worker is SIGKILLed mid-turn.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeToyPack } from '../../models/generator/toy.js';
import { imageVariant } from './images.js';
import { type LisaProcess, killMidTurn } from './lisa-process.js';
import { startBenchRedis } from './redis-server.js';
import { Started, startServe, startWorker, writePhaseConfig } from './scale-out-cluster.js';
import { RssSampler, type TurnOutcome, awaitTurn, burst, cpuSeconds, postTurn, storedTurns } from './scale-out-turns.js';
import { procStatus } from './served.js';
import { photoJpeg } from './standard-images.js';

export interface ScaleOutOptions {
  /** A model pack; undefined: a toy pack generated in the temp dir. */
  pack?: string;
  /** Measured turns per row. */
  turns: number;
  /** Worker counts, one row each. */
  workers: readonly number[];
  /** Also a row for serve without a queue URL (turns run in its own process). */
  inProcess: boolean;
  /** The SIGKILL recovery run; undefined skips it. */
  recovery?: { lockMs: number; stalledIntervalMs: number; turns: number };
  /** How long serve and the workers sit idle after start before their idle RSS is read. */
  idleSeconds: number;
  cpuThreads?: number;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Everything started is registered here (the CLI kills it on Ctrl-C); a fresh one otherwise. */
  started?: Started;
}

/** Resident memory in MB; undefined where /proc is not available. */
export interface RssMb {
  /** VmRSS after start and idleSeconds, before any turn. */
  idle?: number;
  /** Highest VmRSS sampled while the measured turns ran. */
  peak?: number;
  /**
   * VmHWM at the end: the peak over the process's life, model load and
   * warm-up included. The kernel's RSS counters are approximate, so a sampled
   * VmRSS can exceed it slightly.
   */
  hwm?: number;
}

export interface ThroughputRow {
  /** 0: serve without a queue URL, running the turns itself. */
  workers: number;
  turns: number;
  answered: number;
  failed: number;
  seconds: number;
  turnsPerSecond: number;
  serve: RssMb;
  /** The largest of the workers' figures; absent in-process. */
  worker?: RssMb;
  /** CPU time (user + system) used during the measured turns: where the cores went. */
  cpuSeconds: { serve?: number; workers?: number };
}

export interface RecoveryResult {
  lockMs: number;
  stalledIntervalMs: number;
  turns: number;
  answered: number;
  /** The job the killed worker held. */
  retakenJobId: string;
  /** The worker that ran it again. */
  retakenBy?: string;
  /** From the SIGKILL to the retaken turn's answer reaching the web client. */
  secondsToAnswer: number;
  /** 'turn finished' log lines for the retaken job, over every worker (1: answered once). */
  retakenFinishedCount: number;
  /** Question/answer pairs stored in the retaken turn's conversation (1: answered once). */
  retakenStoredTurns: number;
  /** Every turn's conversation stored exactly one pair. */
  everyTurnStoredOnce: boolean;
}

export interface ScaleOutReport {
  pack: string;
  rows: ThroughputRow[];
  recovery?: RecoveryResult;
}

interface Context {
  dir: string;
  pack: string;
  redisUrl: string;
  started: Started;
  image: Uint8Array;
  log: (line: string) => void;
  options: ScaleOutOptions;
  /** Tags images so that no two turns share an image hash (each turn is a cold first turn). */
  nextTag: () => string;
}

export async function runScaleOutBench(options: ScaleOutOptions): Promise<ScaleOutReport> {
  const started = options.started ?? new Started();
  const log = options.log ?? (() => undefined);
  try {
    const dir = started.dir(await mkdtemp(path.join(os.tmpdir(), 'lisa-bench-scale-')));
    let pack = options.pack;
    if (!pack) {
      pack = path.join(dir, 'toy');
      log(`generating the toy pack in ${pack}`);
      await writeToyPack(pack);
    }
    const redis = await startBenchRedis();
    started.other(redis.pid, redis.stop);
    let tag = 0;
    const ctx: Context = { dir, pack, redisUrl: redis.url, started, image: await photoJpeg(640, 480), log, options, nextTag: () => `scale-out bench turn ${tag++}` };
    const rows: ThroughputRow[] = [];
    if (options.inProcess) rows.push(await throughput(ctx, 0));
    for (const workers of options.workers) rows.push(await throughput(ctx, workers));
    const recovery = options.recovery ? await measureRecovery(ctx, options.recovery) : undefined;
    return { pack: options.pack ?? 'toy (generated)', rows, recovery };
  } finally {
    await started.stopAll();
  }
}

function images(ctx: Context, n: number): Uint8Array[] {
  return Array.from({ length: n }, () => imageVariant(ctx.image, ctx.nextTag()));
}

async function startPhase(ctx: Context, name: string, workers: number, queue?: { lockMs?: number; stalledIntervalMs?: number }) {
  const config = await writePhaseConfig({
    dir: ctx.dir,
    pack: ctx.pack,
    redisUrl: workers > 0 ? ctx.redisUrl : undefined,
    queueName: name,
    lockMs: queue?.lockMs,
    stalledIntervalMs: queue?.stalledIntervalMs,
    cpuThreads: ctx.options.cpuThreads,
    maxQueue: Math.max(100, 2 * ctx.options.turns + 20),
  });
  const [serve, ...procs] = await Promise.all([
    startServe(config, ctx.started),
    ...Array.from({ length: workers }, (_, i) => startWorker(config, ctx.started, `worker ${String.fromCharCode(65 + i)}`)),
  ]);
  return { serve: serve as { proc: LisaProcess; url: string }, workers: procs as LisaProcess[] };
}

async function throughput(ctx: Context, workers: number): Promise<ThroughputRow> {
  const label = workers === 0 ? 'in-process serve' : `serve + ${workers} worker${workers === 1 ? '' : 's'}`;
  ctx.log(`${label}: starting`);
  const { serve, workers: procs } = await startPhase(ctx, workers === 0 ? 'bench-in-process' : `bench-${workers}-workers`, workers);
  await sleep(ctx.options.idleSeconds * 1000);
  const serveIdle = await procStatus(serve.proc.pid, 'VmRSS');
  const workersIdle = await Promise.all(procs.map((p) => procStatus(p.pid, 'VmRSS')));
  // Warm-up, not measured: each worker's first turn creates onnxruntime's sessions' arenas and threads.
  const warm = await burst(serve.url, images(ctx, Math.max(2, 2 * workers)), turnTimeoutMs(30_000, 15_000));
  assertAnswered(warm.outcomes, `${label} warm-up`);
  ctx.log(`${label}: ${ctx.options.turns} turns`);
  const cpuBefore = await cpuOf(serve.proc, procs);
  const sampler = new RssSampler([serve.proc.pid, ...procs.map((p) => p.pid)]);
  const measured = await burst(serve.url, images(ctx, ctx.options.turns), turnTimeoutMs(30_000, 15_000));
  const peaks = await sampler.stop();
  const cpuAfter = await cpuOf(serve.proc, procs);
  const serveHwm = await procStatus(serve.proc.pid, 'VmHWM');
  const workersHwm = await Promise.all(procs.map((p) => procStatus(p.pid, 'VmHWM')));
  await ctx.started.stop([serve.proc, ...procs]);
  const answered = measured.outcomes.filter((o) => o.state === 'done').length;
  const row: ThroughputRow = {
    workers,
    turns: ctx.options.turns,
    answered,
    failed: measured.outcomes.length - answered,
    seconds: measured.seconds,
    turnsPerSecond: answered / measured.seconds,
    serve: { idle: serveIdle, peak: peaks.get(serve.proc.pid), hwm: serveHwm },
    cpuSeconds: {
      serve: difference(cpuAfter.serve, cpuBefore.serve),
      workers: workers > 0 ? difference(cpuAfter.workers, cpuBefore.workers) : undefined,
    },
  };
  if (workers > 0) {
    row.worker = {
      idle: largest(workersIdle),
      peak: largest(procs.map((p) => peaks.get(p.pid))),
      hwm: largest(workersHwm),
    };
  }
  ctx.log(`${label}: ${answered}/${row.turns} answered in ${row.seconds.toFixed(1)} s`);
  return row;
}

async function measureRecovery(ctx: Context, recovery: NonNullable<ScaleOutOptions['recovery']>): Promise<RecoveryResult> {
  const { lockMs, stalledIntervalMs } = recovery;
  ctx.log(`recovery (lockMs ${lockMs}, stalledIntervalMs ${stalledIntervalMs}): ${recovery.turns} turns, one of 2 workers SIGKILLed mid-turn`);
  const { serve, workers } = await startPhase(ctx, 'bench-recovery', 2, { lockMs, stalledIntervalMs });
  const victim = workers[1]!;
  const posted = await Promise.all(images(ctx, recovery.turns).map((image) => postTurn(serve.url, 'Where is the red object?', image)));
  let allSettled = false;
  const settling = Promise.all(posted.map(({ turnId, cookie }) => awaitTurn(serve.url, turnId, cookie, turnTimeoutMs(lockMs, stalledIntervalMs))));
  void settling.finally(() => (allSettled = true)).catch(() => undefined);
  const killing = killMidTurn(victim, () => allSettled);
  const retakenJobId = await Promise.race([
    killing,
    settling.then(() => {
      throw new Error(`${victim.name} finished its turns before it could be stopped holding one: use more recovery turns`);
    }),
  ]);
  const killedAt = Date.now();
  ctx.log(`recovery: SIGKILLed ${victim.name} holding ${retakenJobId}; waiting for another worker to retake it`);
  const outcomes = await settling;
  const retaken = outcomes.find((o) => o.jobId === retakenJobId)!;
  const finishedBy = workers.filter((w) => w.jobs('turn finished').includes(retakenJobId));
  const stored = await Promise.all(outcomes.map((o) => storedTurns(serve.url, o.cookie)));
  await ctx.started.stop([serve.proc, ...workers]);
  return {
    lockMs,
    stalledIntervalMs,
    turns: recovery.turns,
    answered: outcomes.filter((o) => o.state === 'done').length,
    retakenJobId,
    retakenBy: finishedBy.find((w) => w !== victim)?.name,
    secondsToAnswer: (retaken.settledAt - killedAt) / 1000,
    retakenFinishedCount: workers.flatMap((w) => w.jobs('turn finished')).filter((id) => id === retakenJobId).length,
    retakenStoredTurns: stored[outcomes.indexOf(retaken)]!,
    everyTurnStoredOnce: stored.every((n) => n === 1),
  };
}

/** Generous: a turn may wait for a dead worker's lock to expire and the next stalled-job check. */
function turnTimeoutMs(lockMs: number, stalledIntervalMs: number): number {
  return lockMs + 2 * stalledIntervalMs + 120_000;
}

function assertAnswered(outcomes: readonly TurnOutcome[], what: string): void {
  const failed = outcomes.find((o) => o.state !== 'done');
  if (failed) throw new Error(`${what}: a turn failed: ${JSON.stringify(failed.error)}`);
}

/** CPU seconds of serve, and of all the workers together. */
async function cpuOf(serve: LisaProcess, workers: readonly LisaProcess[]): Promise<{ serve?: number; workers?: number }> {
  const each = await Promise.all(workers.map((w) => cpuSeconds(w.pid)));
  return { serve: await cpuSeconds(serve.pid), workers: each.includes(undefined) ? undefined : each.reduce<number>((a, b) => a + b!, 0) };
}

function difference(after: number | undefined, before: number | undefined): number | undefined {
  return after === undefined || before === undefined ? undefined : after - before;
}

function largest(values: ReadonlyArray<number | undefined>): number | undefined {
  const known = values.filter((v): v is number => v !== undefined);
  return known.length > 0 ? Math.max(...known) : undefined;
}
