/**
 * How fast a pack's decoder runs here: one prefill of --prompt rows, then
 * --tokens single-token steps (greedy, no drafts), through the engine's own
 * decoderStep, so either decoder form is measured as the engine runs it.
 * Prints one JSON line. Timings swing run to run on shared machines: compare
 * packs in alternating runs (docs/converter.md, "Fused decoder").
 *
 *   npx tsx models/converter/decoder-speed.ts --model DIR [--prompt 300] [--tokens 32] [--threads N]
 */
import { parseArgs } from 'node:util';
import { decoderStep, embedTokens } from '../../src/engine/generate.js';
import { emptyKv } from '../../src/engine/kv.js';
import { openPack, releasePack } from '../../src/engine/pack.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    prompt: { type: 'string', default: '300' },
    tokens: { type: 'string', default: '32' },
    threads: { type: 'string', default: '0' },
  },
});
if (!values.model) throw new Error('--model <pack folder> is required');
const promptRows = Number(values.prompt);
const tokens = Number(values.tokens);

const pack = await openPack(values.model, { providers: ['cpu'], cpuThreads: Number(values.threads) });
const { vocab, form } = pack.manifest.decoder;
// Any ids will do for speed; spread over the vocabulary so no row repeats.
const ids = Array.from({ length: promptRows }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
const embeds = await embedTokens(pack, ids);

// One unrecorded prefill and step first: ONNX Runtime allocates and plans on first use.
const warm = await decoderStep(pack, embeds.subarray(0, embeds.length / promptRows * 8), 8, emptyKv(pack));
await decoderStep(pack, await embedTokens(pack, warm.next), 1, warm.kv);

let started = performance.now();
let step = await decoderStep(pack, embeds, promptRows, emptyKv(pack));
const prefillMs = performance.now() - started;
started = performance.now();
for (let i = 0; i < tokens; i++) step = await decoderStep(pack, await embedTokens(pack, step.next), 1, step.kv);
const decodeMs = performance.now() - started;
await releasePack(pack);

process.stdout.write(
  `${JSON.stringify({
    pack: values.model,
    form,
    dtype: pack.manifest.dtype,
    promptRows,
    tokens,
    prefillMs: Math.round(prefillMs),
    decodeTokensPerSecond: Number(((tokens * 1000) / decodeMs).toFixed(2)),
  })}\n`,
);
