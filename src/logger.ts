import { pino, type Logger } from 'pino';

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
  return pino(
    {
      name: options.name ?? 'lisa-bot',
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    // stderr: stdout belongs to command output (answers, --json).
    (options.destination ?? process.stderr) as pino.DestinationStream,
  );
}
