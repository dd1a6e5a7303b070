/**
 * The fast-generation table (docs/performance.md): prefill time, decode
 * tokens/s and the KV bytes each decoder run takes in and hands back, for
 * packs converted from one checkpoint in several forms (plain / fused,
 * float32 / int8 / int4), each fused pack also with its on-device Loop.
 *
 *   npx tsx src/bench/decode-table.ts [--rounds 3] [--prompt 316] [--tokens 64] [--json] NAME=PACK[@provider] ...
 *
 * Variants run in alternating order, one after another in each round (this
 * machine's speed drifts between runs; medians of rounds, ratios against the
 * first variant). Each run opens its pack on the cpu provider (or the one
 * after @, without fallback), warms it with a short answer, then times one
 * prompt of --prompt positions and --tokens greedy tokens (drafts off; EOS
 * never stops it).
 */
import { parseArgs } from 'node:util';
import type ort from 'onnxruntime-node';
import { embedTokens, generate } from '../engine/generate.js';
import { emptyKv } from '../engine/kv.js';
import { type LoadedPack, openPack, releasePack } from '../engine/pack.js';
import type { ProviderName } from '../engine/providers.js';
import { decoderWeightBytes } from './gpu-run.js';
import { machineInfo } from './machine.js';
import { median } from './stats.js';

interface Variant {
  name: string;
  dir: string;
  loop: boolean;
  /** cpu unless given (NAME=PACK@webgpu): on webgpu the cache stays on the device and moves no host bytes. */
  provider?: ProviderName;
}

interface DecoderRunBytes {
  /** Positions the run added to the cache (1 for a step; every token of a Loop run). */
  newPositions: number;
  kvIn: number;
  kvOut: number;
}

interface Sample {
  prefillMs: number;
  decodeMs: number;
  tokens: number;
  runs: DecoderRunBytes[];
}

function tensorBytes(t: ort.Tensor): number {
  // A device tensor never crosses to the host: it counts for nothing here.
  return t.location === 'cpu' ? (t.data as ArrayBufferView).byteLength : 0;
}

/** Counts the KV bytes of every decoder run: past fed in, present handed back (host memory only). */
function countKvBytes(pack: LoadedPack, runs: DecoderRunBytes[]): void {
  const session = pack.sessions.decoder;
  const run = session.run.bind(session) as (feeds: ort.InferenceSession.FeedsType) => Promise<ort.InferenceSession.ReturnType>;
  pack.sessions.decoder = new Proxy(session, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver);
      return async (feeds: ort.InferenceSession.FeedsType) => {
        const out = await run(feeds);
        const past = Object.entries(feeds).filter(([name]) => name.startsWith('past_key_values.'));
        const present = Object.entries(out).filter(([name]) => name.startsWith('present.'));
        const positions = (t: ort.Tensor | undefined) => t?.dims[2] ?? 0;
        runs.push({
          newPositions: positions(present[0]?.[1]) - positions(past[0]?.[1] as ort.Tensor | undefined),
          kvIn: past.reduce((sum, [, t]) => sum + tensorBytes(t as ort.Tensor), 0),
          kvOut: present.reduce((sum, [, t]) => sum + tensorBytes(t), 0),
        });
        return out;
      };
    },
  });
}

async function answer(pack: LoadedPack, promptLength: number, tokens: number, loop: boolean) {
  // Any ids past the first few special ones: with random weights one prompt is as good as another.
  const { vocab } = pack.manifest.decoder;
  const ids = Array.from({ length: promptLength }, (_, i) => 3 + ((i * 7) % (vocab - 3)));
  return generate({
    pack,
    embeds: await embedTokens(pack, ids),
    count: ids.length,
    kv: emptyKv(pack),
    maxNewTokens: tokens,
    contextLength: pack.manifest.decoder.contextLength,
    segId: -1,
    eosId: -1,
    throwIfAborted: () => undefined,
    draftLength: 0,
    deviceLoop: loop,
  });
}

async function measure(variant: Variant, promptLength: number, tokens: number): Promise<Sample> {
  const pack = await openPack(variant.dir, { providers: [variant.provider ?? 'cpu'], cpuFallback: false });
  try {
    await answer(pack, 8, 2, variant.loop);
    const runs: DecoderRunBytes[] = [];
    countKvBytes(pack, runs);
    const result = await answer(pack, promptLength, tokens, variant.loop);
    return { prefillMs: result.prefillMs, decodeMs: result.decodeMs, tokens: result.ids.length, runs };
  } finally {
    await releasePack(pack);
  }
}

export interface TableRow {
  variant: string;
  decoderMB: number;
  prefillMs: number;
  decodeTokensPerSecond: number;
  /** Decode tokens/s over the first variant's (same round), median of rounds. */
  speedup: number;
  decodeRuns: number;
  /** Per decode run (the prefill excluded), mean: KV bytes fed as past and handed back as present. */
  kvInPerRunMB: number;
  kvOutPerRunMB: number;
  /** KV bytes in and out over the whole answer, per decode token (a Loop run moves the cache once for many tokens). */
  kvPerTokenMB: number;
  /** The KV bytes of the positions a decode run adds: all it would have to move if the cache stayed put. */
  newRowsPerRunKB: number;
}

export async function decodeTable(
  variants: Variant[],
  options: { rounds: number; promptLength: number; tokens: number; onProgress?: (line: string) => void },
): Promise<TableRow[]> {
  const samples = new Map<string, Sample[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the order each round so no variant always runs first (or right after a big load).
    const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
    for (const variant of order) {
      samples.get(variant.name)!.push(await measure(variant, options.promptLength, options.tokens));
      options.onProgress?.(`round ${round + 1}/${options.rounds}: ${variant.name} done`);
    }
  }
  const tps = (s: Sample) => (Math.max(0, s.tokens - 1) / s.decodeMs) * 1000;
  const base = samples.get(variants[0]!.name)!;
  const rows: TableRow[] = [];
  for (const variant of variants) {
    const s = samples.get(variant.name)!;
    const pack = await openPack(variant.dir, { providers: ['cpu'] });
    const { layers, kvHeads, headDim } = pack.manifest.decoder;
    const elementBytes = pack.manifest.dtype === 'float16' ? 2 : 4;
    const weights = await decoderWeightBytes(variant.dir, pack.manifest);
    await releasePack(pack);
    const decodeRuns = s[0]!.runs.slice(1);
    const mean = (f: (r: DecoderRunBytes) => number) => decodeRuns.reduce((sum, r) => sum + f(r), 0) / Math.max(1, decodeRuns.length);
    rows.push({
      variant: variant.name,
      decoderMB: weights / 1e6,
      prefillMs: median(s.map((x) => x.prefillMs)),
      decodeTokensPerSecond: median(s.map(tps)),
      speedup: median(s.map((x, i) => tps(x) / tps(base[i]!))),
      decodeRuns: decodeRuns.length,
      kvInPerRunMB: mean((r) => r.kvIn) / 1e6,
      kvOutPerRunMB: mean((r) => r.kvOut) / 1e6,
      kvPerTokenMB: decodeRuns.reduce((sum, r) => sum + r.kvIn + r.kvOut, 0) / Math.max(1, s[0]!.tokens - 1) / 1e6,
      newRowsPerRunKB: (mean((r) => r.newPositions) * layers * 2 * kvHeads * headDim * elementBytes) / 1e3,
    });
  }
  return rows;
}

export function formatDecodeTable(rows: TableRow[]): string {
  const lines = [
    '| variant | decoder MB | prefill ms | decode tok/s | vs first | decode runs | KV in / out per run (MB) | KV in+out per token (MB) | new KV rows per run (KB) |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.variant} | ${r.decoderMB.toFixed(0)} | ${r.prefillMs.toFixed(0)} | ${r.decodeTokensPerSecond.toFixed(1)} | ${r.speedup.toFixed(2)}x | ${r.decodeRuns} | ` +
        `${r.kvInPerRunMB.toFixed(1)} / ${r.kvOutPerRunMB.toFixed(1)} | ${r.kvPerTokenMB.toFixed(1)} | ${r.newRowsPerRunKB.toFixed(0)} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { rounds: { type: 'string', default: '3' }, prompt: { type: 'string', default: '316' }, tokens: { type: 'string', default: '64' }, json: { type: 'boolean', default: false } },
  });
  if (positionals.length === 0) throw new Error('usage: npx tsx src/bench/decode-table.ts [--rounds 3] [--prompt 316] [--tokens 64] [--json] NAME=PACK[@provider] ...');
  const variants: Variant[] = [];
  for (const arg of positionals) {
    const [name, target] = arg.includes('=') ? (arg.split('=', 2) as [string, string]) : [arg, arg];
    const [dir, provider] = target.split('@') as [string, ProviderName | undefined];
    const pack = await openPack(dir, { providers: ['cpu'] });
    const loop = pack.manifest.decoder.onDeviceLoop === true;
    await releasePack(pack);
    variants.push({ name: loop ? `${name} step` : name, dir, loop: false, provider });
    if (loop) variants.push({ name: `${name} Loop`, dir, loop: true, provider });
  }
  const options = { rounds: Number(values.rounds), promptLength: Number(values.prompt), tokens: Number(values.tokens) };
  const machine = machineInfo();
  const rows = await decodeTable(variants, { ...options, onProgress: (line) => process.stderr.write(`${line}\n`) });
  if (values.json) process.stdout.write(`${JSON.stringify({ machine, options, rows }, null, 2)}\n`);
  else {
    process.stdout.write(`${machine.cpu}, ${machine.cores} cores, load ${machine.loadAverage.toFixed(1)} at start; onnxruntime-node ${machine.onnxruntime}\n`);
    process.stdout.write(`prompt ${options.promptLength} positions, ${options.tokens} tokens, ${options.rounds} rounds (medians)\n\n${formatDecodeTable(rows)}\n`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
