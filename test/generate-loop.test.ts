/**
 * Decoding inside the graph (src/engine/generate-loop.ts with the Loop graph of
 * models/converter/graphs/llama-loop.ts) against the step loop on the same
 * converted pack: the same ids, [SEG] hidden states, cache and masks, for
 * every way decoding stops, on the converter's parity fixtures (the fixture
 * answers are the PyTorch reference's). CPU provider.
 */
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../models/converter/convert.js';
import { decoderStep, embedTokens, generate } from '../src/engine/generate.js';
import type { GenerationResult } from '../src/engine/generation.js';
import { MAX_RUN_IDS, generateOnDevice, useDeviceLoop } from '../src/engine/generate-loop.js';
import { decodeImage } from '../src/engine/image.js';
import { type KvState, emptyKv } from '../src/engine/kv.js';
import { type LoadedPack, openPack, releasePack } from '../src/engine/pack.js';
import { clipPixelValues, samPixelValues } from '../src/engine/preprocess.js';
import { halfToFloat } from '../src/engine/floats.js';
import { type FloatData, allocFloat, copyFloats, floatData, floatTensor, int64Tensor, truncateKv } from '../src/engine/tensors.js';
import { IMAGE_SLOT } from '../src/engine/tokenizer.js';
import { type FixtureCase, type FixtureTurn, converterFixtures } from './helpers/converter-fixtures.js';
import { pythonAvailability } from './helpers/python.js';

const py = pythonAvailability();


const toNumbers = (data: FloatData): Float32Array => (data instanceof Float32Array ? data : Float32Array.from(data, halfToFloat));

/** Largest |a - b| over two float arrays of the same length. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/**
 * Largest |a - b| relative to b's largest magnitude. float16 states may differ
 * by an ulp between the Loop body and the main graph (ONNX Runtime optimises
 * the two graphs separately).
 */
function relativeDiff(a: FloatData, b: FloatData): number {
  const [x, y] = [toNumbers(a), toNumbers(b)];
  return maxDiff(x, y) / Math.max(1e-6, ...Array.from(y, Math.abs));
}

describe.skipIf(py.skip)('greedy decoding inside the graph (ONNX Loop) gives the step loop\'s results', () => {
  let work: string;
  let loopPack: LoadedPack;
  let fusedPack: LoadedPack;
  let halfPack: LoadedPack;
  let landscape: FixtureCase;
  let fixtures: string;
  /** Each pack's image rows (its vision encoder, its dtype). */
  const imageRows = new Map<LoadedPack, FloatData>();
  let samEmbeddings: ort.Tensor;
  let segId: number;
  let eosId: number;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lisa-loop-'));
    const made = await converterFixtures(py.python);
    fixtures = made.dir;
    landscape = made.index.cases.find((c) => c.name === 'lisa-7b-landscape')!;
    const convert = async (out: string, deviceLoop: boolean, dtype: 'float32' | 'float16' = 'float32') => {
      await convertCheckpoint({
        checkpoint: path.join(fixtures, 'lisa-7b'),
        visionTower: path.join(fixtures, 'clip'),
        out: path.join(work, out),
        dtype,
        decoder: 'fused',
        deviceLoop,
      });
      return openPack(path.join(work, out), { providers: ['cpu'] });
    };
    loopPack = await convert('loop', true);
    fusedPack = await convert('fused', false);
    halfPack = await convert('loop-f16', true, 'float16');
    segId = loopPack.tokenizer.segId;
    eosId = loopPack.tokenizer.eosId;
    const image = await decodeImage(await readFile(path.join(fixtures, landscape.image)), { maxPixels: 4e7 });
    const S = loopPack.manifest.clip.size;
    const pixels = new ort.Tensor('float32', await clipPixelValues(image, loopPack.manifest.clip), [1, 3, S, S]);
    for (const pack of [loopPack, fusedPack, halfPack]) imageRows.set(pack, floatData((await pack.sessions.visionEncoder.run({ pixel_values: pixels })).image_features!));
    const samSize = loopPack.manifest.sam.size;
    const sam = await loopPack.sessions.samImageEncoder.run({
      pixel_values: new ort.Tensor('float32', (await samPixelValues(image, loopPack.manifest.sam)).data, [1, 3, samSize, samSize]),
    });
    samEmbeddings = sam.image_embeddings!;
  }, 300_000);

  afterAll(async () => {
    for (const pack of [loopPack, fusedPack, halfPack]) if (pack) await releasePack(pack);
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The embedding rows of `ids` (IMAGE_SLOT: the image's rows), as the engine feeds them. */
  async function rows(pack: LoadedPack, ids: readonly number[]): Promise<{ rows: FloatData; count: number }> {
    const H = pack.manifest.decoder.hidden;
    const I = pack.manifest.imageTokens;
    const count = ids.reduce((n, id) => n + (id === IMAGE_SLOT ? I : 1), 0);
    const out = allocFloat(pack.manifest.dtype, count * H);
    const text = await embedTokens(pack, ids.filter((id) => id !== IMAGE_SLOT));
    let row = 0;
    let t = 0;
    for (const id of ids) {
      if (id === IMAGE_SLOT) {
        copyFloats(out, row * H, imageRows.get(pack)!, 0, I * H);
        row += I;
      } else copyFloats(out, row++ * H, text, t++ * H, H);
    }
    return { rows: out, count };
  }

  interface Decode {
    pack?: LoadedPack;
    ids: readonly number[];
    kv?: KvState;
    maxNewTokens?: number;
    contextLength?: number;
  }

  /** The engine's decoding: step loop (`deviceLoop` false), Loop graph (true; runs sized by speed), or the Loop graph in runs of `runIds` ids. */
  async function decode(options: Decode, deviceLoop: boolean, runIds?: number): Promise<GenerationResult> {
    const pack = options.pack ?? loopPack;
    const prompt = await rows(pack, options.ids);
    const input = {
      pack,
      embeds: prompt.rows,
      count: prompt.count,
      kv: options.kv ?? emptyKv(pack),
      maxNewTokens: options.maxNewTokens ?? 512,
      contextLength: options.contextLength ?? pack.manifest.decoder.contextLength,
      segId,
      eosId,
      throwIfAborted: () => undefined,
      deviceLoop,
    };
    if (runIds === undefined) return generate(input);
    const prefill = await decoderStep(pack, input.embeds, input.count, input.kv);
    return generateOnDevice(input, prefill, 0, (ids) => embedTokens(pack, ids), runIds);
  }

  /** Low-res mask logits of each [SEG] (seg projection, then SAM's mask decoder). */
  async function masks(segHidden: FloatData[]): Promise<Float32Array> {
    const H = loopPack.manifest.decoder.hidden;
    const hidden = allocFloat(loopPack.manifest.dtype, segHidden.length * H);
    segHidden.forEach((h, i) => copyFloats(hidden, i * H, h, 0, H));
    const projected = await loopPack.sessions.segProjection.run({ seg_hidden: floatTensor(loopPack.manifest.dtype, hidden, [segHidden.length, H]) });
    const decoded = await loopPack.sessions.samMaskDecoder.run({ image_embeddings: samEmbeddings, seg_embeddings: projected.seg_embeddings! });
    return decoded.low_res_masks!.data as Float32Array;
  }

  /** Relative tolerance for states of the data's dtype: float32 rounding, or float16's (2^-11 is half an ulp). */
  const tolerance = (data: unknown) => (data instanceof Uint16Array ? 2 ** -9 : 1e-6);

  /** Same ids, fed ids, [SEG] hidden states, cache and (float32 packs) masks. */
  async function expectSame(loop: GenerationResult, step: GenerationResult): Promise<void> {
    expect(loop.ids).toEqual(step.ids);
    expect(loop.fedIds).toEqual(step.fedIds);
    expect(loop.kv.length).toBe(step.kv.length);
    for (const [name, tensor] of Object.entries(step.kv.tensors)) {
      expect(loop.kv.tensors[name]!.dims).toEqual(tensor.dims);
      expect(relativeDiff(floatData(loop.kv.tensors[name]!), floatData(tensor)), name).toBeLessThanOrEqual(tolerance(tensor.data));
    }
    expect(loop.segHidden).toHaveLength(step.segHidden.length);
    loop.segHidden.forEach((h, i) => expect(relativeDiff(h, step.segHidden[i]!)).toBeLessThanOrEqual(tolerance(h)));
    if (step.segHidden.length === 0 || !(step.segHidden[0] instanceof Float32Array)) return;
    const [a, b] = [await masks(loop.segHidden), await masks(step.segHidden)];
    expect(maxDiff(a, b)).toBeLessThanOrEqual(1e-4);
    // The masks a user sees: low-res logits above 0 (upsampling is the same function of both).
    expect(Array.from(a, (v) => v > 0)).toEqual(Array.from(b, (v) => v > 0));
  }

  const answer = (turn: FixtureTurn) => turn.generated_ids.filter((id) => id !== eosId);

  it('stops at EOS with the reference answer: same ids, [SEG] hidden states, cache and masks, in one run or in runs of 8', async () => {
    const turn = landscape.turns[0]!;
    const step = await decode({ ids: turn.prompt_ids }, false);
    expect(step.ids).toEqual(answer(turn));
    expect(step.segHidden).toHaveLength(turn.seg_steps.length);
    await expectSame(await decode({ ids: turn.prompt_ids }, true), step);
    // The whole answer in one run after the prefill (it is shorter than MAX_RUN_IDS), or in runs of 8.
    const oneRun = await decode({ ids: turn.prompt_ids }, true, MAX_RUN_IDS);
    await expectSame(oneRun, step);
    expect(oneRun.decodeRuns).toBe(1);
    const runsOf8 = await decode({ ids: turn.prompt_ids }, true, 8);
    await expectSame(runsOf8, step);
    expect(runsOf8.decodeRuns).toBe(Math.ceil((turn.generated_ids.length - 1) / 8));
  });

  it('float16 pack: the same ids, [SEG] hidden states and cache both ways', async () => {
    const turn = landscape.turns[0]!;
    const step = await decode({ pack: halfPack, ids: turn.prompt_ids }, false);
    expect(step.segHidden.length).toBeGreaterThan(0);
    expect(step.segHidden[0]).toBeInstanceOf(Uint16Array);
    await expectSame(await decode({ pack: halfPack, ids: turn.prompt_ids }, true), step);
    await expectSame(await decode({ pack: halfPack, ids: turn.prompt_ids }, true, 8), step);
  });

  it('a cancel takes effect at the end of the run in progress', async () => {
    const prompt = await rows(loopPack, landscape.turns[0]!.prompt_ids);
    const prefill = await decoderStep(loopPack, prompt.rows, prompt.count, emptyKv(loopPack));
    let checks = 0;
    const runs: string[] = [];
    const cancelled = new Error('cancelled');
    const pack: LoadedPack = { ...loopPack, onGraphRun: (run) => runs.push(run.graph) };
    const input = {
      pack,
      embeds: prompt.rows,
      count: prompt.count,
      kv: emptyKv(pack),
      maxNewTokens: 512,
      contextLength: pack.manifest.decoder.contextLength,
      segId,
      eosId,
      // The user cancels while the first run is in progress: the next check throws.
      throwIfAborted: () => {
        if (checks++ > 0) throw cancelled;
      },
    };
    await expect(generateOnDevice(input, prefill, 0, (ids) => embedTokens(pack, ids), 8)).rejects.toBe(cancelled);
    expect(runs.filter((graph) => graph === 'decoder')).toHaveLength(1);
  });

  it('stops after maxNewTokens, the last token never fed', async () => {
    const ids = landscape.turns[0]!.prompt_ids;
    for (const maxNewTokens of [1, 2, 5, 17]) {
      const step = await decode({ ids, maxNewTokens }, false);
      expect(step.ids).toHaveLength(maxNewTokens);
      await expectSame(await decode({ ids, maxNewTokens }, true), step);
      await expectSame(await decode({ ids, maxNewTokens }, true, 8), step);
    }
  });

  it('stops when the cache reaches the context length', async () => {
    const ids = landscape.turns[0]!.prompt_ids;
    const prompt = (await rows(loopPack, ids)).count;
    for (const room of [0, 1, 9]) {
      const step = await decode({ ids, contextLength: prompt + room }, false);
      expect(step.ids).toHaveLength(room + 1);
      expect(step.kv.length).toBe(prompt + room);
      await expectSame(await decode({ ids, contextLength: prompt + room }, true), step);
      await expectSame(await decode({ ids, contextLength: prompt + room }, true, 4), step);
    }
  });

  it('a follow-up turn after a reused cache prefix gives the reference answer both ways', async () => {
    const [first, second] = landscape.turns as [FixtureTurn, FixtureTurn];
    const before = await decode({ ids: first.prompt_ids }, false);
    // As the engine's KV cache: the longest shared prefix of what the cache holds, minus at least one row to feed.
    const held = [...first.prompt_ids, ...before.fedIds];
    let shared = 0;
    while (shared < held.length && shared < second.prompt_ids.length - 1 && held[shared] === second.prompt_ids[shared]) shared++;
    expect(shared).toBeGreaterThan(first.prompt_ids.indexOf(IMAGE_SLOT));
    const positions = (await rows(loopPack, second.prompt_ids.slice(0, shared))).count;
    const kv: KvState = { tensors: Object.fromEntries(Object.entries(before.kv.tensors).map(([name, t]) => [name, truncateKv(t, positions)])), length: positions };
    const rest = second.prompt_ids.slice(shared);
    const step = await decode({ ids: rest, kv }, false);
    expect(step.ids).toEqual(answer(second));
    const loop = await decode({ ids: rest, kv }, true);
    await expectSame(loop, step);
    expect(loop.kv.length).toBe(positions + (await rows(loopPack, rest)).count + loop.fedIds.length);
  });

  it('max_new_tokens 0 is a plain step: the same outputs as the fused graph without the Loop', async () => {
    const ids = landscape.turns[0]!.prompt_ids;
    const prompt = await rows(loopPack, ids);
    const feeds = (pack: LoadedPack, extra: Record<string, ort.Tensor>) => ({
      inputs_embeds: floatTensor('float32', prompt.rows, [1, prompt.count, pack.manifest.decoder.hidden]),
      attention_mask: int64Tensor(new Array<number>(prompt.count).fill(1), [1, prompt.count]),
      ...emptyKv(pack).tensors,
      scored_rows: int64Tensor([3], [1]),
      ...extra,
    });
    const plain = await fusedPack.sessions.decoder.run(feeds(fusedPack, {}));
    const loop = await loopPack.sessions.decoder.run(feeds(loopPack, { max_new_tokens: int64Tensor([0], [1]), eos_id: int64Tensor([eosId], [1]) }));
    expect(loop.next_ids!.data).toEqual(plain.next_ids!.data);
    expect(maxDiff(floatData(loop.last_hidden_state!), floatData(plain.last_hidden_state!))).toBeLessThanOrEqual(1e-6);
    for (const name of fusedPack.sessions.decoder.outputNames.filter((n) => n.startsWith('present.'))) {
      expect(loop[name]!.dims).toEqual(plain[name]!.dims);
      expect(maxDiff(floatData(loop[name]!), floatData(plain[name]!)), name).toBeLessThanOrEqual(1e-6);
    }
    // The generated list is the step's own choice (the last scored row's) and the state that chose it.
    const H = loopPack.manifest.decoder.hidden;
    expect(Array.from(loop.generated_ids!.data as BigInt64Array)).toEqual([(plain.next_ids!.data as BigInt64Array)[2]]);
    expect(maxDiff(floatData(loop.generated_hidden!), floatData(plain.last_hidden_state!).slice(2 * H, 3 * H))).toBeLessThanOrEqual(1e-6);
    // And the engine's step loop on either graph gives the reference answer.
    const onLoopGraph = await decode({ ids }, false);
    expect((await decode({ pack: fusedPack, ids }, false)).ids).toEqual(onLoopGraph.ids);
  });

  it('refuses at load a pack whose lisa.json and decoder disagree about the Loop, saying which way to fix it', async () => {
    const relabel = async (from: string, onDeviceLoop: boolean) => {
      const dir = path.join(work, `${from}-relabelled`);
      await cp(path.join(work, from), dir, { recursive: true });
      const manifest = JSON.parse(await readFile(path.join(dir, 'lisa.json'), 'utf8'));
      manifest.decoder.onDeviceLoop = onDeviceLoop;
      await writeFile(path.join(dir, 'lisa.json'), JSON.stringify(manifest));
      return dir;
    };
    await expect(openPack(await relabel('loop', false), { providers: ['cpu'] })).rejects.toThrow(
      /decoder\.onnx holds a greedy decoding Loop, but lisa\.json says decoder\.onDeviceLoop false .*set it to true/,
    );
    await expect(openPack(await relabel('fused', true), { providers: ['cpu'] })).rejects.toThrow(
      /decoder\.onnx has no greedy decoding Loop, but lisa\.json says decoder\.onDeviceLoop true: set it to false/,
    );
  });

  it('keeps one copy of the weights: the Loop adds only the embedding table to decoder.onnx; lisa.json says onDeviceLoop', async () => {
    const size = async (pack: string) => (await stat(path.join(work, pack, loopPack.manifest.graphs.decoder))).size;
    const { vocab, hidden } = loopPack.manifest.decoder;
    const added = (await size('loop')) - (await size('fused'));
    expect(added).toBeGreaterThanOrEqual(vocab * hidden * 4);
    // The body's nodes and small constants, far less than another copy of any layer.
    expect(added - vocab * hidden * 4).toBeLessThan(64 * 1024);
    expect(loopPack.manifest.decoder.onDeviceLoop).toBe(true);
    expect(fusedPack.manifest.decoder.onDeviceLoop).toBe(false);
    // The provider policy (measured on CPU: docs/performance.md): drafts configured keep the step loop on CPU.
    expect(useDeviceLoop(loopPack)).toBe(true);
    expect(useDeviceLoop(loopPack, 4)).toBe(false);
    expect(useDeviceLoop({ ...loopPack, provider: 'cuda' }, 4)).toBe(true);
    expect(useDeviceLoop({ ...loopPack, provider: 'tensorrt' })).toBe(false);
    expect(useDeviceLoop({ ...loopPack, provider: 'webgpu' })).toBe(false);
  });
});
