/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4),
 * so that tests fail on output a Prometheus server would refuse: every sample
 * belongs to a family declared by `# TYPE`, names and labels are well formed,
 * values are numbers, and each histogram's buckets rise to its `+Inf` bucket,
 * which equals its `_count`.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** Family name -> its declared type. */
  types: Map<string, string>;
  help: Map<string, string>;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (\\S+)(?: (-?\\d+))?$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''] };

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`not a sample value in: ${line}`);
  return value;
}

/** The family a sample belongs to: its own name, or a histogram's or summary's base name. */
function familyOf(name: string, types: Map<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const [family, type] of types) {
    if ((SUFFIXES[type] ?? []).some((suffix) => suffix && name === family + suffix)) return family;
  }
  return undefined;
}

export function parseExposition(text: string): Exposition {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const meta = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
      if (!meta) continue; // a plain comment
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown metric type in: ${line}`);
        if (types.has(name)) throw new Error(`${name} has two TYPE lines`);
        if (samples.some((s) => familyOf(s.name, new Map([[name, rest]])) === name)) throw new Error(`TYPE of ${name} after its samples`);
        types.set(name, rest);
      } else {
        help.set(name, rest);
      }
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(new RegExp(LABEL, 'g'))) {
      if (key! in labels) throw new Error(`label ${key} twice in: ${line}`);
      labels[key!] = value!.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    }
    const name = match[1]!;
    if (!familyOf(name, types)) throw new Error(`sample of an undeclared family: ${line}`);
    samples.push({ name, labels, value: parseValue(match[match.length - 2]!, line) });
  }
  checkHistograms(samples, types);
  return { samples, types, help };
}

function checkHistograms(samples: Sample[], types: Map<string, string>): void {
  for (const [family, type] of types) {
    if (type !== 'histogram') continue;
    const series = new Map<string, { buckets: [number, number][]; count?: number }>();
    for (const sample of samples) {
      if (sample.name !== `${family}_bucket` && sample.name !== `${family}_count`) continue;
      const { le, ...rest } = sample.labels;
      const key = JSON.stringify(rest);
      const entry = series.get(key) ?? { buckets: [] };
      series.set(key, entry);
      if (sample.name.endsWith('_count')) entry.count = sample.value;
      else entry.buckets.push([parseValue(le ?? '', `${family} bucket without le`), sample.value]);
    }
    for (const [key, { buckets, count }] of series) {
      const last = buckets.at(-1);
      if (!last || last[0] !== Infinity) throw new Error(`${family}${key} has no +Inf bucket`);
      for (let i = 1; i < buckets.length; i++) {
        if (buckets[i]![0] <= buckets[i - 1]![0] || buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${family}${key}: buckets do not rise`);
      }
      if (last[1] !== count) throw new Error(`${family}${key}: +Inf bucket ${last[1]} is not _count ${count}`);
    }
  }
}

/** The value of the first sample with this name and these labels; 0 when the series does not exist yet. */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found?.value ?? 0;
}
