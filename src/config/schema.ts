import { z } from 'zod';
import { overlayFormats } from '../render/formats.js';

/**
 * The shape of the configuration, with no default values: the core's defaults
 * live in config/default.yaml and each surface's in its adapter's
 * defaults.yaml (one place per fact), loaded first, so after merging every key
 * here is present. Objects are strict so that a typo in
 * a user's file is an error instead of a silently ignored key.
 *
 * The core's sections are here; each chat surface (adapters/<name>/index.ts)
 * brings its own section and secrets, and the config loader is handed them
 * (loadConfig's `surfaces`), so the core never imports an adapter.
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

const section = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape, { error: 'expected a section (a mapping of keys)' });

const enumOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.join(', ')}` });

/** The field builders, for the sections the adapters own: one wording of every error. */
export const fields = { int, bool, text, nonEmpty, list, httpUrl, hostName, section, enumOf };

/** The surface the core itself serves (`lisa-bot ask --session`). */
export const CLI_SURFACE = 'cli';

/** What the config loader needs of a surface: its section of the file and its secrets. */
export interface SurfaceConfig {
  /** The surface's name, which is also its top-level section (`discord:`) and its conversation keys' prefix. */
  readonly name: string;
  /** The section's schema (strict, without defaults: they live in `defaultsFile`). */
  readonly section: z.ZodObject;
  /**
   * A YAML file with the section's defaults, every key commented (the
   * adapter's `defaults.yaml`), loaded after config/default.yaml and before
   * the user's file. Without one, the user's file must give every key.
   */
  readonly defaultsFile?: string;
  /** The environment variables that hold its secrets, under their conventional names. */
  readonly secrets: readonly string[];
  /**
   * Problems a section and the secrets can only show together (a mode whose
   * credential is missing). `settings` is the parsed section, typed by the
   * surface itself (hence `never` here: any one-section check fits);
   * `origin('mode')` names the key and where its value came from.
   */
  check?(settings: never, secrets: Secrets, origin: (key: string) => string): string[];
}

const storeUrl = () =>
  text().regex(/^(sqlite:\/\/.+|rediss?:\/\/.+)$/, {
    error: 'expected sqlite://<file> or redis://host:port/db',
  });

const queueUrl = () =>
  text().regex(/^(|rediss?:\/\/.+)$/, {
    error: 'expected "" (in-process) or redis://host:port/db',
  });

export const providerNames = ['cuda', 'tensorrt', 'webgpu', 'cpu'] as const;
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** The core's sections; `surfaceNames` are the prefixes allowed in the allow-lists. */
function coreShape(surfaceNames: readonly string[]) {
  const surfaces = [...surfaceNames, CLI_SURFACE];
  const escaped = surfaces.map((name) => name.replace(/[^A-Za-z0-9]/g, '\\$&'));
  const surfaceScoped = (what: string) =>
    text().regex(new RegExp(`^(${escaped.join('|')}):[^:\\s]+$`), {
      error: `expected "<surface>:<${what} id>" with surface ${surfaces.slice(0, -1).join(', ')} or ${CLI_SURFACE}`,
    });
  return {
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
      name: nonEmpty(),
      lockMs: int(1000),
      stalledIntervalMs: int(1000),
      connectTimeoutMs: int(100),
    }),
    worker: section({
      concurrency: int(1),
      metricsHost: nonEmpty(),
      metricsPort: int(0, 65535),
    }),
    serve: section({
      metricsHost: nonEmpty(),
      metricsPort: int(0, 65535),
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
      format: enumOf(overlayFormats),
    }),
    log: section({
      level: enumOf(logLevels),
    }),
  };
}

/** The whole file's schema: the core's sections, then one per surface. */
export function configSchema(surfaces: readonly SurfaceConfig[]): z.ZodObject {
  const shape: Record<string, z.ZodType> = coreShape(surfaces.map((s) => s.name));
  for (const surface of surfaces) {
    // A surface named like a core section, or like another surface, would silently replace it.
    if (Object.hasOwn(shape, surface.name)) throw new Error(`surface ${surface.name} collides with a config section`);
    shape[surface.name] = surface.section;
  }
  return section(shape);
}

/** Secrets come from the environment only, under their conventional names (the surfaces' `secrets`). */
export type Secrets = Readonly<Record<string, string | undefined>>;

type CoreConfig = z.infer<z.ZodObject<ReturnType<typeof coreShape>>>;

/**
 * Each surface's section, typed: an adapter declares its own here from its
 * index.ts (`declare module '…/src/config/schema.js' { interface SurfaceSettings
 * { web: WebSettings } }`), so the core names no surface.
 */
export interface SurfaceSettings {}

export type Config = CoreConfig & SurfaceSettings & { readonly secrets: Secrets };
