/**
 * Resident memory of an idle `lisa-bot serve` (served.ts), measured once it
 * has been ready and idle for a while, then again after one turn through the
 * web API and the same idle time (the arenas, caches and worker threads a
 * first turn leaves behind).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { startServed } from './served.js';

export interface IdleServeResult {
  /** VmRSS (MB) after ready + idle; undefined where /proc is not available. */
  readyIdleRssMb?: number;
  afterTurnIdleRssMb?: number;
  /** VmHWM: the peak resident size so far. */
  peakRssMb?: number;
  idleSeconds: number;
}

export async function measureIdleServe(options: { root: string; pack: string; image: Uint8Array; idleSeconds: number }): Promise<IdleServeResult> {
  const served = await startServed(options);
  try {
    await sleep(options.idleSeconds * 1000);
    const readyIdleRssMb = await served.memory('VmRSS');
    await served.turn(options.image);
    await sleep(options.idleSeconds * 1000);
    return {
      readyIdleRssMb,
      afterTurnIdleRssMb: await served.memory('VmRSS'),
      peakRssMb: await served.memory('VmHWM'),
      idleSeconds: options.idleSeconds,
    };
  } finally {
    await served.stop();
  }
}
