import { monitorEventLoopDelay } from 'node:perf_hooks';

export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

const RESOLUTION_MS = 1;

/**
 * Event-loop delay over a stretch of the run. The histogram samples the gap
 * between timer ticks scheduled every millisecond; the delay reported is that
 * gap minus the millisecond (how late the loop was), as fastify's
 * under-pressure does. A task that blocks for 50 ms shows up as one ~50 ms
 * sample, not fifty: look at `max` as well as the percentiles.
 */
export function startLoopMonitor(): { stop(): LoopDelay } {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  histogram.enable();
  return {
    stop() {
      histogram.disable();
      const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
      if (histogram.count === 0) return { p50: 0, p99: 0, max: 0, samples: 0 };
      return { p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), samples: histogram.count };
    },
  };
}
