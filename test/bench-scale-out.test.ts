/**
 * `npm run bench:scale-out` on tiny numbers: its report must describe what
 * happened (every turn answered, memory read for every process, the killed
 * worker's turn retaken and answered once), and it must leave nothing behind.
 * How fast anything was is the benchmark's output, never asserted here.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runScaleOutBench } from '../src/bench/scale-out-run.js';
import { redisAvailability } from './helpers/redis.js';

const redis = redisAvailability();
/** /proc/<pid>/status is where the benchmark reads resident memory. */
const hasProc = existsSync('/proc/self/status');

function plausibleMb(value: number | undefined): void {
  if (!hasProc) return;
  expect(value).toBeGreaterThan(10);
  expect(value).toBeLessThan(64 * 1024);
}

describe.skipIf(redis.skip)('npm run bench:scale-out', () => {
  it('reports throughput, memory and a SIGKILLed worker turn answered once, and cleans up after itself', async () => {
    const lines: string[] = [];
    const report = await runScaleOutBench({
      turns: 4,
      workers: [1],
      inProcess: true,
      recovery: { lockMs: 2000, stalledIntervalMs: 1000, turns: 8 },
      idleSeconds: 0,
      log: (line) => lines.push(line),
    });

    expect(report.rows.map((row) => row.workers)).toEqual([0, 1]);
    for (const row of report.rows) {
      expect(row).toMatchObject({ turns: 4, answered: 4, failed: 0 });
      expect(row.seconds).toBeGreaterThan(0);
      expect(row.turnsPerSecond).toBeCloseTo(4 / row.seconds);
      plausibleMb(row.serve.idle);
      plausibleMb(row.serve.peak);
      plausibleMb(row.serve.hwm);
      if (hasProc) expect(row.cpuSeconds.serve).toBeGreaterThan(0);
    }
    expect(report.rows[0]!.worker).toBeUndefined();
    const worker = report.rows[1]!.worker!;
    plausibleMb(worker.idle);
    plausibleMb(worker.peak);
    plausibleMb(worker.hwm);
    expect(report.rows[0]!.cpuSeconds.workers).toBeUndefined();
    // The queue's worker ran the turns.
    if (hasProc) expect(report.rows[1]!.cpuSeconds.workers).toBeGreaterThan(0);

    const recovery = report.recovery!;
    expect(recovery).toMatchObject({
      lockMs: 2000,
      stalledIntervalMs: 1000,
      turns: 8,
      answered: 8,
      retakenBy: 'worker A',
      retakenFinishedCount: 1,
      retakenStoredTurns: 1,
      everyTurnStoredOnce: true,
    });
    expect(recovery.retakenJobId).toMatch(/^web:/);
    expect(Number.isFinite(recovery.secondsToAnswer)).toBe(true);

    // The generated pack lived in the run's temp dir, which is gone with everything in it.
    const dir = /generating the toy pack in (.*)$/.exec(lines.find((line) => line.startsWith('generating')) ?? '')?.[1];
    expect(dir).toBeDefined();
    expect(existsSync(dir!)).toBe(false);
  }, 180_000);
});
