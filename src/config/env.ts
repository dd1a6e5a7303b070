import type { z } from 'zod';

export const ENV_PREFIX = 'LISABOT_';

/**
 * The environment variable that overrides a key: `['discord', 'apiUrl']` ->
 * `LISABOT_DISCORD_API_URL`. Part of the public contract (see ARCHITECTURE.md).
 */
export function envVarName(path: readonly string[]): string {
  return ENV_PREFIX + path.map(upperSnake).join('_');
}

function upperSnake(camel: string): string {
  return camel
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

export type LeafKind = 'number' | 'boolean' | 'list' | 'string';

export interface Leaf {
  path: string[];
  kind: LeafKind;
}

/** Every settable key of a config schema (see configSchema), keyed by its environment variable name. */
export function leavesByEnvVar(schema: z.ZodType): ReadonlyMap<string, Leaf> {
  const leaves = new Map<string, Leaf>();
  const walk = (schema: z.ZodType, path: string[]): void => {
    const def = schema.def as { type: string; shape?: Record<string, z.ZodType> };
    if (def.type === 'object' && def.shape) {
      for (const [key, child] of Object.entries(def.shape)) walk(child, [...path, key]);
      return;
    }
    const name = envVarName(path);
    // Two keys mapping to one variable would make an override ambiguous; fail loudly in development.
    if (leaves.has(name)) throw new Error(`config keys collide on ${name}`);
    leaves.set(name, { path, kind: leafKind(def.type) });
  };
  walk(schema, []);
  return leaves;
}

function leafKind(type: string): LeafKind {
  switch (type) {
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'array':
      return 'list';
    default:
      return 'string';
  }
}

export type Coerced = { ok: true; value: unknown } | { ok: false; expected: string };

/** Turns an environment string into the type the schema expects; the schema checks the rest. */
export function coerceEnvValue(kind: LeafKind, raw: string): Coerced {
  const trimmed = raw.trim();
  switch (kind) {
    case 'number': {
      const value = Number(trimmed);
      if (trimmed === '' || !Number.isFinite(value)) return { ok: false, expected: 'a number' };
      return { ok: true, value };
    }
    case 'boolean': {
      const lower = trimmed.toLowerCase();
      if (lower === 'true' || lower === '1') return { ok: true, value: true };
      if (lower === 'false' || lower === '0') return { ok: true, value: false };
      return { ok: false, expected: 'true, false, 1 or 0' };
    }
    case 'list': {
      const expected = 'a JSON array such as ["a","b"]';
      try {
        const value: unknown = JSON.parse(trimmed);
        return Array.isArray(value) ? { ok: true, value } : { ok: false, expected };
      } catch {
        return { ok: false, expected };
      }
    }
    case 'string':
      return { ok: true, value: raw };
  }
}

/** The closest known name, for "did you mean" hints on typos. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Only suggest when the typo is small relative to the name; otherwise the hint misleads.
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
    }
    previous = current;
  }
  return previous[b.length];
}
