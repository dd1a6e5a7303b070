import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

/**
 * The one logger factory. Tokens must never reach a log line, whatever object
 * a caller passes: pino redacts these keys at any of the first three levels.
 * The core's names are here; each chat surface adds its own (its secrets'
 * variables, its SDK's option names: adapters/index.ts `secretKeys`), handed
 * in as `redact` by whoever starts the surfaces.
 */
const CORE_SECRET_KEYS = ['token', 'authorization', 'Authorization', 'password', 'secret', 'secrets'];
const CORE_PATHS = ['req.headers.authorization', 'headers.authorization', 'config.headers.Authorization'];

function redactPaths(extra: readonly string[]): string[] {
  const keys = [...new Set([...CORE_SECRET_KEYS, ...extra])];
  return [...keys, ...keys.map((k) => `*.${k}`), ...keys.map((k) => `*.*.${k}`), ...CORE_PATHS];
}

export type { Logger };

export interface LoggerOptions {
  level?: string;
  name?: string;
  destination?: NodeJS.WritableStream;
  /** Key names to redact on top of the core's (a surface's secrets). */
  redact?: readonly string[];
}

export function createLogger(options: LoggerOptions = {}): Logger {
  // stderr: stdout belongs to command output (answers, --json).
  const target = options.destination ?? process.stderr;
  return pino(
    {
      name: options.name ?? 'lisa-bot',
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: redactPaths(options.redact ?? []), censor: '[redacted]' },
    },
    (readable(target) ? prettyLines(target) : target) as pino.DestinationStream,
  );
}

/** A person reads a terminal; anything else (a file, a pipe, a log collector) gets one JSON object a line. */
function readable(target: NodeJS.WritableStream): boolean {
  const format = process.env.LOG_FORMAT;
  if (format === 'json' || format === 'pretty') return format === 'pretty';
  if (target === process.stderr && process.env.LOG_PRETTY_PID === String(process.pid)) return true;
  return (target as NodeJS.WriteStream).isTTY === true;
}

/** Formatted as pino writes each line, synchronously, so nothing is lost when the process exits right after. */
function prettyLines(target: NodeJS.WritableStream): { write(line: string): void } {
  const prettify = prettyFactory({
    // A worker thread's stderr is a pipe to the main thread's terminal: colour by the choice, not the stream.
    colorize: process.env.NO_COLOR === undefined,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name',
  });
  return { write: (line) => void target.write(prettify(line)) };
}
