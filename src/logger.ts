import { pino, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';

/**
 * The one logger factory. Tokens must never reach a log line, whatever object
 * a caller passes: pino redacts these paths at any of the first two levels.
 */
const SECRET_KEYS = [
  'token', 'botToken', 'appToken', 'signingSecret', 'authorization', 'Authorization', 'password', 'secret', 'secrets',
  'DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET',
];
const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'req.headers.authorization',
  'headers.authorization',
  'config.headers.Authorization',
];

export type { Logger };

export function createLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  // stderr: stdout belongs to command output (answers, --json).
  const target = options.destination ?? process.stderr;
  return pino(
    {
      name: options.name ?? 'lisa-bot',
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
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
