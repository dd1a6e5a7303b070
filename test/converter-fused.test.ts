/**
 * The fused decoder form (models/converter/graphs/llama-fused.ts): its graph
 * against the PyTorch LLaMA of test/fixtures/llm_graphs_reference.py, the
 * engine's decoding with it against the plain form on the same weights, the
 * weight memo a Loop body relies on, and the load-time checks of the form.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PackDtype } from '../src/engine/floats.js';
import { GraphOps } from '../models/converter/graphs/layers.js';
import { buildDecoderGraph, decoderTensorNames } from '../models/converter/graphs/llama.js';
import { type FusedSpec, buildFusedDecoderGraph, fusedDecoderStack, gqaLengths } from '../models/converter/graphs/llama-fused.js';
import type { LlamaSpec } from '../models/converter/graphs/llama-spec.js';
import { WeightGraph } from '../models/converter/weight-graph.js';
import { MemoryWeights } from '../models/converter/weights.js';
import { UserInputError } from '../src/errors.js';
import { checkDecoderProvider, checkGraph, graphContract } from '../src/engine/contract.js';
import { generate } from '../src/engine/generate.js';
import { emptyKv } from '../src/engine/kv.js';
import { type PackManifest, packManifestSchema } from '../src/engine/manifest.js';
import type { LoadedPack } from '../src/engine/pack.js';
import { floatToHalf, halfToFloat } from '../src/engine/floats.js';
import type { FloatData } from '../src/engine/tensors.js';
import { pythonAvailability } from './helpers/python.js';

const availability = pythonAvailability();
const SCRIPT = new URL('./fixtures/llm_graphs_reference.py', import.meta.url).pathname;
/** Max |onnx - torch| allowed, relative to the reference's largest magnitude (as for the plain graph). */
const TOLERANCE = { float32: 1e-5, float16: 1e-2 } as const;

type Values = { shape: number[]; data: Float32Array };
interface Ref {
  file: string;
  shape: number[];
}
interface Call {
  start: number;
  count: number;
  mask: number[];
  outputs: Record<string, Ref>;
}
interface LlamaCase {
  spec: LlamaSpec;
  sequences: Record<string, { embeds: Ref; calls: Call[] }>;
  weights: Record<string, Ref>;
}

const session = (model: Uint8Array) => ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });

async function build(source: MemoryWeights, dtype: PackDtype, make: (ctx: { source: MemoryWeights; dtype: PackDtype; graph: WeightGraph; onTensor: (name: string) => void }) => Promise<void>) {
  const graph = new WeightGraph('decoder');
  const consumed: string[] = [];
  await make({ source, dtype, graph, onTensor: (name) => consumed.push(name) });
  return { bytes: graph.finish(), consumed, weightBytes: graph.weightBytes };
}

const floatFeed = (dtype: PackDtype, data: Float32Array, shape: number[]) =>
  dtype === 'float32' ? new ort.Tensor('float32', data, shape) : new ort.Tensor('float16', Uint16Array.from(data, floatToHalf), shape);
const valuesOf = (t: ort.Tensor): Float32Array => (t.data instanceof Uint16Array ? Float32Array.from(t.data, halfToFloat) : (t.data as Float32Array));

function fusedFeeds(dtype: PackDtype, spec: LlamaSpec, embeds: Values, call: { start: number; count: number }, scored: number, past?: ort.InferenceSession.OnnxValueMapType) {
  const H = spec.hidden;
  const total = call.start + call.count;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: floatFeed(dtype, embeds.data.slice(call.start * H, total * H), [1, call.count, H]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
    scored_rows: new ort.Tensor('int64', BigInt64Array.from([BigInt(scored)]), [1]),
  };
  for (let i = 0; i < spec.layers; i++) {
    for (const part of ['key', 'value']) {
      feeds[`past_key_values.${i}.${part}`] =
        (past?.[`present.${i}.${part}`] as ort.Tensor | undefined) ?? floatFeed(dtype, new Float32Array(0), [1, spec.kvHeads, 0, spec.headDim]);
    }
  }
  return feeds;
}

function relativeDiff(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let absolute = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i]! - expected[i]!);
    if (!(d <= absolute)) absolute = d;
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return absolute / scale;
}

describe.skipIf(availability.skip)('the fused decoder graph matches PyTorch (transformers 4.31 LLaMA)', () => {
  let dir = '';
  let llamas: Record<string, LlamaCase>;
  const load = async (ref: Ref): Promise<Values> => {
    const bytes = await readFile(path.join(dir, ref.file));
    return { shape: ref.shape, data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
  };
  const worst = new Map<string, number>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lisa-fused-'));
    await promisify(execFile)(availability.python, [SCRIPT, '--out', dir], { timeout: 120_000 });
    llamas = (JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { llamas: Record<string, LlamaCase> }).llamas;
  }, 180_000);
  afterAll(async () => {
    for (const [key, d] of worst) console.log(`fused ${key}: max relative diff ${d.toExponential(2)}`);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  for (const key of ['gqa16', 'mha16']) {
    for (const dtype of ['float32', 'float16'] as const) {
      it(`${key}, ${dtype}: a prefill, a 1-row step and a 3-row draft after it give transformers' hidden states, cache and greedy ids`, async () => {
        const c = llamas[key]!;
        const weights = new MemoryWeights();
        for (const [name, ref] of Object.entries(c.weights)) weights.set(name, ref.shape, (await load(ref)).data);
        const spec: FusedSpec = { ...c.spec, maxPositions: 64 };
        const { bytes, consumed } = await build(weights, dtype, (ctx) => buildFusedDecoderGraph(ctx, spec));
        expect(consumed).toEqual(decoderTensorNames(spec));
        const decoder = await session(bytes);
        const sequence = c.sequences.plain!;
        const embeds = await load(sequence.embeds);
        let past: ort.InferenceSession.OnnxValueMapType | undefined;
        for (const call of sequence.calls) {
          const out = await decoder.run(fusedFeeds(dtype, spec, embeds, call, call.count, past));
          expect(Object.keys(out)).not.toContain('logits');
          for (const [name, ref] of Object.entries(call.outputs)) {
            if (name === 'logits') continue;
            const d = relativeDiff(valuesOf(out[name]!), (await load(ref)).data);
            const label = `${name.replace(/^present\.\d+\./, 'present.')} ${dtype}`;
            worst.set(label, Math.max(worst.get(label) ?? 0, d));
            expect(d, label).toBeLessThan(TOLERANCE[dtype]);
          }
          // Each row's id is the reference's greedy choice, unless its top two logits tie within the tolerance.
          const logits = (await load(call.outputs.logits!)).data;
          const V = spec.vocab;
          const scale = logits.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
          const ids = Array.from(out.next_ids!.data as BigInt64Array, Number);
          expect(out.next_ids!.dims).toEqual([1, call.count]);
          ids.forEach((id, row) => {
            const r = logits.subarray(row * V, (row + 1) * V);
            const best = r.indexOf(Math.max(...r));
            if (id !== best) expect(r[best]! - r[id]!, `row ${row}`).toBeLessThan(TOLERANCE[dtype] * scale);
          });
          past = out;
        }
        // scored_rows 1: only the last row's id and hidden state come back.
        const first = sequence.calls[0]!;
        const last = await decoder.run(fusedFeeds(dtype, spec, embeds, first, 1));
        const all = await decoder.run(fusedFeeds(dtype, spec, embeds, first, first.count));
        expect(last.next_ids!.dims).toEqual([1, 1]);
        expect(last.last_hidden_state!.dims).toEqual([1, 1, spec.hidden]);
        expect(Number((last.next_ids!.data as BigInt64Array)[0])).toBe(Number((all.next_ids!.data as BigInt64Array)[first.count - 1]));
        expect(Array.from(valuesOf(last.last_hidden_state!))).toEqual(Array.from(valuesOf(all.last_hidden_state!).slice((first.count - 1) * spec.hidden)));
        await decoder.release();
      });
    }
  }
});

/** Seeded random checkpoint weights for a small LLaMA (no Python needed). */
function randomLlama(spec: LlamaSpec, seed: number): MemoryWeights {
  let state = seed;
  const random = () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647 - 0.5;
  };
  const weights = new MemoryWeights();
  const set = (name: string, shape: number[], around = 0, spread = 0.6) =>
    weights.set(name, shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => around + spread * random()));
  const { hidden: H, heads: NH, kvHeads: K, headDim: D, intermediate: M } = spec;
  set('model.embed_tokens.weight', [spec.vocab, H], 0, 2);
  for (let i = 0; i < spec.layers; i++) {
    const p = `model.layers.${i}`;
    set(`${p}.input_layernorm.weight`, [H], 1, 0.4);
    set(`${p}.self_attn.q_proj.weight`, [NH * D, H]);
    set(`${p}.self_attn.k_proj.weight`, [K * D, H]);
    set(`${p}.self_attn.v_proj.weight`, [K * D, H]);
    set(`${p}.self_attn.o_proj.weight`, [H, NH * D]);
    set(`${p}.post_attention_layernorm.weight`, [H], 1, 0.4);
    set(`${p}.mlp.gate_proj.weight`, [M, H]);
    set(`${p}.mlp.up_proj.weight`, [M, H]);
    set(`${p}.mlp.down_proj.weight`, [H, M]);
  }
  set('model.norm.weight', [H], 1, 0.4);
  set('lm_head.weight', [spec.vocab, H], 0, 2);
  return weights;
}

const SPEC: FusedSpec = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 48, vocab: 12, rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 256 };

function manifestFor(form: 'plain' | 'fused', dtype: PackDtype = 'float32'): PackManifest {
  const normalisation = { size: 16, mean: [0, 0, 0], std: [1, 1, 1] };
  return packManifestSchema.parse({
    format: 'lisa-onnx/1',
    name: 'fused-test',
    dtype,
    template: 'llava_v1',
    system: '',
    tokens: { seg: '[SEG]', imageStart: '<im_start>', imageEnd: '<im_end>', image: '<image>' },
    imageTokens: 4,
    clip: normalisation,
    sam: normalisation,
    decoder: { layers: SPEC.layers, kvHeads: SPEC.kvHeads, headDim: SPEC.headDim, hidden: SPEC.hidden, vocab: SPEC.vocab, contextLength: SPEC.maxPositions, form },
    generation: { maxNewTokens: 64 },
    graphs: { visionEncoder: 'v', embedTokens: 'e', decoder: 'decoder.onnx', segProjection: 's', samImageEncoder: 'si', samMaskDecoder: 'sm' },
  });
}

describe('the fused decoder in the engine', () => {
  const weights = randomLlama(SPEC, 7);
  let plain: ort.InferenceSession;
  let fused: ort.InferenceSession;
  beforeAll(async () => {
    plain = await session((await build(weights, 'float32', (ctx) => buildDecoderGraph(ctx, SPEC))).bytes);
    fused = await session((await build(weights, 'float32', (ctx) => buildFusedDecoderGraph(ctx, SPEC))).bytes);
  });
  afterAll(async () => {
    await Promise.allSettled([plain?.release(), fused?.release()]);
  });

  const packOf = (form: 'plain' | 'fused') => ({ manifest: manifestFor(form), sessions: { decoder: form === 'plain' ? plain : fused } }) as unknown as LoadedPack;
  const table = (ids: readonly number[]): FloatData => {
    const rows = new Float32Array(ids.length * SPEC.hidden);
    ids.forEach((id, i) => {
      for (let h = 0; h < SPEC.hidden; h++) rows[i * SPEC.hidden + h] = Math.sin(id * 7.1 + h * 0.37) * 1.5;
    });
    return rows;
  };

  it('generate() gives the same ids, [SEG] hidden states and cache with prompt-lookup drafts, a follow-up after a cached prefix, and teacher forcing', async () => {
    const prompt = [1, 5, 3, 9, 2, 5, 3, 9, 4, 6, 5, 3];
    const segId = 3;
    const run = async (form: 'plain' | 'fused', given?: number[]) => {
      const pack = packOf(form);
      const common = { pack, maxNewTokens: 40, contextLength: SPEC.maxPositions, segId, eosId: 0, throwIfAborted: () => {}, embed: async (ids: readonly number[]) => table(ids) };
      const first = await generate({ ...common, embeds: table(prompt), count: prompt.length, kv: emptyKv(pack), context: prompt, draftLength: 4 });
      // A follow-up: new rows after the first turn's cached positions (a multi-row step after a non-empty past).
      const more = [7, 8, 5, 3];
      const second = await generate({ ...common, embeds: table(more), count: more.length, kv: first.kv, context: [...prompt, ...first.fedIds, ...more], draftLength: 4 });
      const forced = given ? await generate({ ...common, embeds: table([...prompt, ...given]), count: prompt.length + given.length, kv: emptyKv(pack), given }) : undefined;
      return { first, second, forced };
    };
    const a = await run('plain');
    const given = a.first.ids.slice(0, 10);
    const p = await run('plain', given);
    const f = await run('fused', given);
    expect(a.first.drafts.proposed).toBeGreaterThan(0);
    for (const key of ['first', 'second', 'forced'] as const) {
      const x = p[key]!;
      const y = f[key]!;
      expect(y.ids, key).toEqual(x.ids);
      expect(y.fedIds, key).toEqual(x.fedIds);
      expect(y.kv.length, key).toBe(x.kv.length);
      expect(y.drafts, key).toEqual(x.drafts);
      expect(y.segHidden.length, key).toBe(x.segHidden.length);
      y.segHidden.forEach((h, i) => expect(relativeDiff(h as Float32Array, x.segHidden[i] as Float32Array), key).toBeLessThan(1e-5));
    }
    expect(p.first.ids.length).toBeGreaterThan(5);
    expect(p.first.segHidden.length + p.second.segHidden.length).toBeGreaterThan(0);
  });

  it('a second fusedDecoderStack (e.g. inside a Loop body) reads no weight again and stores none', async () => {
    const graph = new WeightGraph('decoder');
    const consumed: string[] = [];
    const ops = new GraphOps({ source: weights, dtype: 'float32', graph, onTensor: (name) => consumed.push(name) });
    let calls = 0;
    const inputs = () => ({
      embeds: graph.input(`embeds_${++calls}`, 'float32', [1, 'T', SPEC.hidden]),
      past: Array.from({ length: SPEC.layers }, (_, i) => ({
        key: graph.input(`k${i}_${calls}`, 'float32', [1, SPEC.kvHeads, 'P', SPEC.headDim]),
        value: graph.input(`v${i}_${calls}`, 'float32', [1, SPEC.kvHeads, 'P', SPEC.headDim]),
      })),
      scoredRows: graph.int64([1]),
      ...gqaLengths(ops, graph.input(`mask_${calls}`, 'int64', [1, 'S'])),
    });
    await fusedDecoderStack(ops, weights, SPEC, inputs());
    const stored = graph.weightBytes;
    const read = consumed.length;
    const body = new WeightGraph('body');
    await fusedDecoderStack(ops.inGraph(body), weights, SPEC, inputs());
    await fusedDecoderStack(ops, weights, SPEC, inputs());
    expect(consumed).toHaveLength(read);
    expect(graph.weightBytes).toBe(stored);
    expect(body.weightBytes).toBe(0);
  });
});

describe('the decoder form is checked at load', () => {
  const weights = randomLlama(SPEC, 11);
  const refusal = (run: () => void): string => {
    try {
      run();
    } catch (error) {
      expect(error).toBeInstanceOf(UserInputError);
      return (error as Error).message;
    }
    throw new Error('not refused');
  };

  it('a fused graph under a plain lisa.json (or none stated), and a plain graph under a fused one, are refused with one message', async () => {
    const fused = await session((await build(weights, 'float32', (ctx) => buildFusedDecoderGraph(ctx, SPEC))).bytes);
    const plain = await session((await build(weights, 'float32', (ctx) => buildDecoderGraph(ctx, SPEC))).bytes);
    const { form: _form, ...unstated } = manifestFor('plain').decoder;
    const defaulted = packManifestSchema.parse({ ...manifestFor('plain'), decoder: unstated });
    expect(defaulted.decoder.form).toBe('plain');
    expect(refusal(() => checkGraph('pack/decoder.onnx', graphContract(defaulted).decoder, fused))).toBe(
      'Model pack graph pack/decoder.onnx is a fused decoder, but lisa.json says decoder.form "plain" (the default when absent): set decoder.form to "fused", or convert the pack again.',
    );
    expect(refusal(() => checkGraph('pack/decoder.onnx', graphContract(manifestFor('fused')).decoder, plain))).toBe(
      'Model pack graph pack/decoder.onnx is a plain decoder, but lisa.json says decoder.form "fused": set decoder.form to "plain", or convert the pack again.',
    );
    // Matching forms pass the whole contract.
    checkGraph('pack/decoder.onnx', graphContract(manifestFor('fused')).decoder, fused);
    checkGraph('pack/decoder.onnx', graphContract(manifestFor('plain')).decoder, plain);
    // A float16 manifest over the float32 fused graph names the tensor.
    expect(refusal(() => checkGraph('pack/decoder.onnx', graphContract(manifestFor('fused', 'float16')).decoder, fused))).toMatch(
      /input "inputs_embeds" is float32 \[1,sequence,64\], expected float16 \[1,[^,\]]+,64\]/,
    );
    await Promise.all([fused.release(), plain.release()]);
  });

  it('a float32 fused decoder is refused on CUDA and TensorRT (GroupQueryAttention there is float16 only), and runs elsewhere', () => {
    for (const provider of ['cuda', 'tensorrt']) {
      expect(refusal(() => checkDecoderProvider(manifestFor('fused'), provider))).toBe(
        `Model pack "fused-test" has a float32 fused decoder, which the ${provider} provider cannot run (onnxruntime's GroupQueryAttention on CUDA takes float16 only): convert it with --dtype float16 (or --decoder plain), or set model.providers to ["cpu"].`,
      );
    }
    expect(() => checkDecoderProvider(manifestFor('fused'), 'cpu')).not.toThrow();
    expect(() => checkDecoderProvider(manifestFor('fused', 'float16'), 'cuda')).not.toThrow();
    expect(() => checkDecoderProvider(manifestFor('plain'), 'cuda')).not.toThrow();
  });
});
