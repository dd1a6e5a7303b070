/**
 * How fast packs' decoders run here: for each --model, a prefill of --prompt
 * rows, then --tokens single-token steps (greedy, no drafts), through the
 * engine's own decoderStep, so either decoder form is measured as the engine
 * runs it. With several packs the runs alternate (each prefill, then each
 * decoding step, in turn), so that load from other processes falls on all of
 * them alike; --rounds repeats the whole. Prints one JSON line per pack with
 * the median prefill and the decode rate over all rounds, in wall time and in
 * CPU time (this process's, all threads): on a loaded machine the CPU time
 * says more about the work a form does, the wall time about what a user waits.
 *
 *   npx tsx models/converter/decoder-speed.ts --model A [--model B ...] [--prompt 300] [--tokens 32] [--rounds 3] [--threads N]
 */
import { parseArgs } from 'node:util';
import { decoderStep, embedTokens } from '../../src/engine/generate.js';
import type { StepResult } from '../../src/engine/generation.js';
import { emptyKv } from '../../src/engine/kv.js';
import { type LoadedPack, openPack, releasePack } from '../../src/engine/pack.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', multiple: true },
    prompt: { type: 'string', default: '300' },
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string', default: '0' },
  },
});
const dirs = values.model ?? [];
if (dirs.length === 0) throw new Error('--model <pack folder> is required (repeat it to compare packs)');
const promptRows = Number(values.prompt);
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);

const packs: LoadedPack[] = [];
for (const dir of dirs) packs.push(await openPack(dir, { providers: ['cpu'], cpuThreads: Number(values.threads) }));
const { vocab, hidden } = packs[0]!.manifest.decoder;
// Any ids will do for speed; spread over the vocabulary so no row repeats.
const ids = Array.from({ length: promptRows }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
const embeds = await Promise.all(packs.map((pack) => embedTokens(pack, ids)));

// One unrecorded prefill and step each: ONNX Runtime allocates and plans on first use.
for (const [i, pack] of packs.entries()) {
  const warm = await decoderStep(pack, embeds[i]!.subarray(0, 8 * hidden), 8, emptyKv(pack));
  await decoderStep(pack, await embedTokens(pack, warm.next), 1, warm.kv);
}

const prefillMs = packs.map(() => [] as number[]);
const prefillCpuMs = packs.map(() => [] as number[]);
const decodeMs = packs.map(() => 0);
const decodeCpuMs = packs.map(() => 0);
const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
for (let round = 0; round < rounds; round++) {
  const steps: StepResult[] = [];
  for (const [i, pack] of packs.entries()) {
    const started = performance.now();
    const cpu = cpuMs();
    steps.push(await decoderStep(pack, embeds[i]!, promptRows, emptyKv(pack)));
    prefillMs[i]!.push(performance.now() - started);
    prefillCpuMs[i]!.push(cpuMs() - cpu);
  }
  for (let t = 0; t < tokens; t++) {
    for (const [i, pack] of packs.entries()) {
      const started = performance.now();
      const cpu = cpuMs();
      steps[i] = await decoderStep(pack, await embedTokens(pack, steps[i]!.next), 1, steps[i]!.kv);
      decodeMs[i]! += performance.now() - started;
      decodeCpuMs[i]! += cpuMs() - cpu;
    }
  }
}
await Promise.all(packs.map((pack) => releasePack(pack)));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
packs.forEach((pack, i) => {
  const line = {
    pack: dirs[i],
    form: pack.manifest.decoder.form,
    dtype: pack.manifest.dtype,
    promptRows,
    tokens,
    rounds,
    prefillMsMedian: Math.round(median(prefillMs[i]!)),
    decodeTokensPerSecond: Number(((rounds * tokens * 1000) / decodeMs[i]!).toFixed(2)),
    prefillCpuMsMedian: Math.round(median(prefillCpuMs[i]!)),
    decodeCpuMsPerToken: Number((decodeCpuMs[i]! / (rounds * tokens)).toFixed(1)),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
});
