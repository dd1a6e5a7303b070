import { z } from 'zod';

/**
 * The shape of the configuration, with no default values: every default lives
 * in config/default.yaml (one place per fact), which is always loaded first, so
 * after merging every key here is present. Objects are strict so that a typo in
 * a user's file is an error instead of a silently ignored key.
 */

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .number({ error: 'expected a number' })
    .int({ error: 'expected a whole number' })
    .min(min, { error: `expected a whole number >= ${min}` })
    .max(max, { error: `expected a whole number <= ${max}` });

const bool = () => z.boolean({ error: 'expected true or false' });
const text = () => z.string({ error: 'expected a string' });
const nonEmpty = () => text().min(1, { error: 'expected a non-empty string' });
const list = <T extends z.ZodType>(item: T) => z.array(item, { error: 'expected a list' });

const httpUrl = () =>
  z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' });

// Hosts are compared against download URLs, so only bare lower-case host names make sense.
const hostName = () =>
  text().regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/, {
    error: 'expected a lower-case host name such as cdn.example.com (no scheme, port or path)',
  });

const surfaceScoped = (what: string) =>
  text().regex(/^(discord|slack|web|cli):[^:\s]+$/, {
    error: `expected "<surface>:<${what} id>" with surface discord, slack, web or cli`,
  });

const storeUrl = () =>
  text().regex(/^(sqlite:\/\/.+|rediss?:\/\/.+)$/, {
    error: 'expected sqlite://<file> or redis://host:port/db',
  });

const queueUrl = () =>
  text().regex(/^(|rediss?:\/\/.+)$/, {
    error: 'expected "" (in-process) or redis://host:port/db',
  });

export const providerNames = ['cuda', 'tensorrt', 'webgpu', 'cpu'] as const;
export const renderFormats = ['png', 'jpeg', 'webp'] as const;
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const section = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape, { error: 'expected a section (a mapping of keys)' });

const enumOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.join(', ')}` });

export const configSchema = section({
  model: section({
    path: nonEmpty(),
    providers: list(enumOf(providerNames)).min(1, { error: 'expected at least one provider' }),
    deviceId: int(0),
    cpuThreads: int(0),
    draftLength: int(0),
    cache: section({
      imageBytes: int(0),
      kvBytes: int(0),
    }),
  }),
  store: section({
    url: storeUrl(),
    sessionIdleMinutes: int(1),
  }),
  queue: section({
    url: queueUrl(),
  }),
  web: section({
    enabled: bool(),
    host: nonEmpty(),
    port: int(0, 65535),
  }),
  discord: section({
    apiUrl: httpUrl(),
    attachmentHosts: list(hostName()),
    allowedGuilds: list(nonEmpty()),
    allowedRoles: list(nonEmpty()),
    messageContentIntent: bool(),
  }),
  slack: section({
    mode: enumOf(['socket', 'http']),
    port: int(0, 65535),
    apiUrl: httpUrl(),
    fileHosts: list(hostName()),
    threadRepliesWithoutMention: bool(),
  }),
  limits: section({
    maxImageBytes: int(1),
    maxImagePixels: int(1),
    maxQuestionChars: int(1),
    perUserPerMinute: int(1),
    maxQueue: int(1),
    allowedUsers: list(surfaceScoped('user')),
    allowedChannels: list(surfaceScoped('channel')),
    downloadTimeoutMs: int(1),
  }),
  render: section({
    format: enumOf(renderFormats),
  }),
  log: section({
    level: enumOf(logLevels),
  }),
});

/** Secrets come from the environment only, under their conventional names. */
export const secretNames = [
  'DISCORD_TOKEN',
  'SLACK_BOT_TOKEN',
  'SLACK_APP_TOKEN',
  'SLACK_SIGNING_SECRET',
] as const;
export type SecretName = (typeof secretNames)[number];
export type Secrets = Readonly<Partial<Record<SecretName, string>>>;

export type FileConfig = z.infer<typeof configSchema>;
export type Config = FileConfig & { readonly secrets: Secrets };
