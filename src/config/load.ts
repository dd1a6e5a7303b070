import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { UserInputError } from '../errors.js';
import { ENV_PREFIX, type Leaf, closest, coerceEnvValue, leavesByEnvVar } from './env.js';
import { type Config, type Secrets, type SurfaceConfig, configSchema } from './schema.js';

/** The packaged defaults; always the base layer, whatever the working directory. */
export const defaultConfigFile = fileURLToPath(new URL('../../config/default.yaml', import.meta.url));

export interface LoadConfigOptions {
  /** A YAML file laid over the defaults (`--config FILE`); relative to process.cwd(). */
  file?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * The chat surfaces' sections and secrets: the registry, adapters/index.ts
   * (`surfaces`), handed in by the CLI so that the core imports no adapter.
   */
  surfaces: readonly SurfaceConfig[];
}

/** What one load knows: the schema for these surfaces, its variables and the secrets' names. */
interface Known {
  schema: z.ZodObject;
  leaves: ReadonlyMap<string, Leaf>;
  surfaces: readonly SurfaceConfig[];
  secretNames: readonly string[];
}

type Plain = Record<string, unknown>;

/** A YAML file to merge; `section` when the file holds one section's keys (a surface's defaults). */
interface ConfigLayer {
  file: string;
  section?: string;
}

/**
 * Loads config/default.yaml, then each surface's defaults file, then the
 * user's file (when it is another file),
 * then `LISABOT_*` environment overrides, and validates the result. Values are
 * returned as written: relative paths (model.path, a sqlite:// file) are
 * relative to the process's working directory, which is how every fs call
 * resolves them. Throws UserInputError('config_invalid') listing every problem.
 */
export function loadConfig(options: LoadConfigOptions): Config {
  const env = options.env ?? process.env;
  const schema = configSchema(options.surfaces);
  const known: Known = {
    schema,
    leaves: leavesByEnvVar(schema),
    surfaces: options.surfaces,
    secretNames: options.surfaces.flatMap((s) => s.secrets),
  };
  const problems: string[] = [];
  // Where each key's value came from, so a message can point at the file or variable to fix.
  const origins = new Map<string, string>();

  const merged: Plain = {};
  const layers = [defaultConfigFile];
  if (options.file !== undefined) {
    const userFile = path.resolve(options.file);
    if (userFile !== defaultConfigFile) layers.push(userFile);
  }
  const surfaceDefaults: ConfigLayer[] = options.surfaces.flatMap((s) => (s.defaultsFile ? [{ file: s.defaultsFile, section: s.name }] : []));
  const ordered: ConfigLayer[] = [{ file: layers[0]! }, ...surfaceDefaults, ...layers.slice(1).map((file) => ({ file }))];
  for (const layer of ordered) {
    const data = readYaml(layer.file, problems, layer.section);
    if (data === undefined) continue;
    const where = `in ${displayPath(layer.file)}`;
    const scoped = layer.section === undefined ? data : { [layer.section]: data };
    rejectSecrets(scoped, [], where, problems, known);
    mergeInto(merged, scoped, [], where, origins);
  }

  applyEnv(merged, env, origins, problems, known);

  const parsed = schema.safeParse(merged, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...describeIssue(issue, origins, schema));
  }
  const secrets = readSecrets(env, known.secretNames);
  if (parsed.success) {
    checkCore(parsed.data as Omit<Config, 'secrets'>, origins, problems);
    checkSurfaces(parsed.data, secrets, origins, problems, known.surfaces);
  }

  if (problems.length > 0 || !parsed.success) {
    throw new UserInputError(
      `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      'config_invalid',
    );
  }
  return { ...(parsed.data as Omit<Config, 'secrets'>), secrets };
}

/** A config file's mapping; a surface's defaults file (`section` set) holds that section's keys at its top level. */
function readYaml(file: string, problems: string[], section?: string): Plain | undefined {
  if (!existsSync(file)) {
    problems.push(`config file ${displayPath(file)} does not exist`);
    return undefined;
  }
  const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true });
  if (doc.errors.length > 0) {
    // The pretty message ends with a code excerpt; its first line already says where.
    for (const error of doc.errors) problems.push(`${displayPath(file)}: ${error.message.split('\n')[0].replace(/:$/, '')}`);
    return undefined;
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined) return {};
  if (!isPlain(data)) {
    problems.push(`${displayPath(file)}: expected a mapping of ${section === undefined ? 'sections (model:, web:, ...)' : `${section}'s keys`} at the top level`);
    return undefined;
  }
  return data;
}

const secretLike = /(token|secret|password|passwd|api_?key|signing)/i;

/** Secrets never belong in a file that gets committed or baked into an image. */
function rejectSecrets(data: Plain, at: string[], where: string, problems: string[], known: Known): void {
  for (const [key, value] of Object.entries(data)) {
    const keyPath = [...at, key];
    if (secretLike.test(key)) {
      problems.push(
        `${keyPath.join('.')} (${where}): secrets are not read from config files; ` +
          `set the ${secretFor(keyPath, known)} environment variable instead`,
      );
      delete data[key];
    } else if (isPlain(value)) {
      rejectSecrets(value, keyPath, where, problems, known);
    }
  }
}

/**
 * The variable a secret-like key most likely meant: among the secrets of the
 * surface it names (slack.signingSecret -> slack's), the one sharing the most
 * words with it (SLACK_SIGNING_SECRET); the surface's first on a tie.
 */
function secretFor(keyPath: string[], known: Known): string {
  const words = keyPath
    .join(' ')
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/);
  const candidates = known.surfaces.filter((s) => words.includes(s.name.toLowerCase())).flatMap((s) => s.secrets);
  let best: string | undefined;
  let bestScore = 0;
  for (const name of candidates) {
    const score = name.toLowerCase().split('_').filter((part) => words.includes(part)).length;
    if (score > bestScore) [best, bestScore] = [name, score];
  }
  return best ?? `matching (${known.secretNames.join(', ')})`;
}

function mergeInto(target: Plain, source: Plain, at: string[], where: string, origins: Map<string, string>): void {
  for (const [key, value] of Object.entries(source)) {
    const keyPath = [...at, key];
    origins.set(keyPath.join('.'), where);
    const existing = target[key];
    if (isPlain(value) && isPlain(existing)) {
      mergeInto(existing, value, keyPath, where, origins);
    } else {
      // Lists replace rather than append: a user listing hosts means exactly those hosts.
      target[key] = isPlain(value) ? structuredClone(value) : value;
    }
  }
}

function applyEnv(merged: Plain, env: NodeJS.ProcessEnv, origins: Map<string, string>, problems: string[], known: Known): void {
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const leaf = known.leaves.get(name);
    if (!leaf) {
      problems.push(unknownVariable(name, known));
      continue;
    }
    const key = leaf.path.join('.');
    const coerced = coerceEnvValue(leaf.kind, raw);
    if (!coerced.ok) {
      problems.push(`${key} (from ${name}=${JSON.stringify(raw)}): expected ${coerced.expected}`);
      continue;
    }
    let node = merged;
    for (const part of leaf.path.slice(0, -1)) {
      if (!isPlain(node[part])) node[part] = {};
      node = node[part] as Plain;
    }
    node[leaf.path[leaf.path.length - 1]] = coerced.value;
    origins.set(key, `from ${name}=${JSON.stringify(raw)}`);
  }
}

function unknownVariable(name: string, { secretNames, leaves }: Known): string {
  const bare = name.slice(ENV_PREFIX.length);
  const secret = secretNames.find((s) => bare === s || bare.endsWith(`_${s}`));
  if (secret) return `${name} is not a configuration variable: secrets keep their conventional names; set ${secret} instead`;
  if (secretLike.test(bare)) {
    return `${name} is not a configuration variable: secrets keep their conventional names (${secretNames.join(', ')})`;
  }
  const hint = closest(name, leaves.keys());
  return `${name} is not a configuration variable${hint ? `; did you mean ${hint}?` : ''}`;
}

function describeIssue(issue: z.core.$ZodIssue, origins: Map<string, string>, schema: z.ZodType): string[] {
  const at = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const keyPath = [...at, key].map(String);
      const known = knownKeys(schema, at.map(String));
      const hint = closest(key, known);
      return (
        `${keyPath.join('.')} (${originOf(keyPath, origins)}): unknown key` +
        (hint ? `; did you mean ${[...at, hint].join('.')}?` : known.length > 0 ? `; known keys here: ${known.join(', ')}` : '')
      );
    });
  }
  const shown = at.reduce<string>(
    (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part),
    '',
  );
  const origin = originOf(at.filter((p): p is string => typeof p === 'string'), origins);
  // Env values are already quoted in the origin; file values are worth echoing back.
  const got = origin.startsWith('from ') || issue.input === undefined ? '' : `, got ${preview(issue.input)}`;
  return [`${shown || '(top level)'} (${origin}): ${issue.message}${got}`];
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function knownKeys(top: z.ZodType, at: string[]): string[] {
  let schema = top;
  for (const part of at) {
    const shape = (schema.def as { shape?: Record<string, z.ZodType> }).shape;
    if (!shape?.[part]) return [];
    schema = shape[part];
  }
  return Object.keys((schema.def as { shape?: Record<string, z.ZodType> }).shape ?? {});
}

function originOf(keyPath: string[], origins: Map<string, string>): string {
  for (let n = keyPath.length; n > 0; n--) {
    const origin = origins.get(keyPath.slice(0, n).join('.'));
    if (origin) return origin;
  }
  return `in ${displayPath(defaultConfigFile)}`;
}

function readSecrets(env: NodeJS.ProcessEnv, secretNames: readonly string[]): Secrets {
  const secrets: Record<string, string> = {};
  for (const name of secretNames) {
    const value = env[name]?.trim();
    if (value) secrets[name] = value;
  }
  // Config objects get logged; keep the values out of JSON and console output.
  const redacted = () => Object.fromEntries(Object.keys(secrets).map((k) => [k, '[set]']));
  Object.defineProperty(secrets, 'toJSON', { value: redacted, enumerable: false });
  Object.defineProperty(secrets, inspect.custom, { value: redacted, enumerable: false });
  return secrets;
}

/** Keys of the core's sections that only make sense together. */
function checkCore(config: Omit<Config, 'secrets'>, origins: Map<string, string>, problems: string[]): void {
  const where = (key: string) => `${key} (${originOf(key.split('.'), origins)})`;
  // Workers read each turn's image from the store by hash: a SQLite file on the serve host is out of their reach.
  if (config.queue.url !== '' && !/^rediss?:\/\//.test(config.store.url)) {
    problems.push(
      `${where('queue.url')}: a Redis job queue needs a shared store, but ${where('store.url')} is ${JSON.stringify(config.store.url)}; set store.url to redis://… (it may be the same Redis)`,
    );
  }
}

/** A surface that is switched on must be able to connect; say so at start, not at first message. */
function checkSurfaces(
  config: Record<string, unknown>,
  secrets: Secrets,
  origins: Map<string, string>,
  problems: string[],
  surfaces: readonly SurfaceConfig[],
): void {
  for (const surface of surfaces) {
    const origin = (key: string) => `${surface.name}.${key} (${originOf([surface.name, key], origins)})`;
    problems.push(...(surface.check?.(config[surface.name] as never, secrets, origin) ?? []));
  }
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}
