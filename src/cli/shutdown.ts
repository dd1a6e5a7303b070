import type { Logger } from '../logger.js';

export interface ShutdownSignals {
  /** Settles on the first SIGINT or SIGTERM. */
  first: Promise<NodeJS.Signals>;
  /** Settles on a second one: the operator insists (stop draining). */
  second: Promise<NodeJS.Signals>;
}

/** Listens for SIGINT/SIGTERM from now on, so that a signal during start-up is not lost. */
export function shutdownSignals(logger: Logger): ShutdownSignals {
  let count = 0;
  let onFirst!: (signal: NodeJS.Signals) => void;
  let onSecond!: (signal: NodeJS.Signals) => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (onFirst = resolve));
  const second = new Promise<NodeJS.Signals>((resolve) => (onSecond = resolve));
  const handle = (signal: NodeJS.Signals) => {
    count += 1;
    if (count === 1) {
      logger.info({ signal }, 'shutting down: finishing running turns (send it again to stop at once)');
      onFirst(signal);
    } else {
      logger.warn({ signal }, 'stopping at once');
      onSecond(signal);
    }
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  return { first, second };
}

/**
 * After a clean shutdown the process should end by itself; if a handle is
 * still open (a library's socket), end it anyway rather than hang a
 * supervisor's restart.
 */
export function exitSoonAfterShutdown(logger: Logger, code = 0): void {
  setTimeout(() => {
    logger.warn('a connection was still open after shutdown; exiting');
    process.exit(code);
  }, 5000).unref();
}
