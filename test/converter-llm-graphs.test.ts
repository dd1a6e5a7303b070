/**
 * The converter's language and vision graphs (embed_tokens, decoder,
 * seg_projection, vision_encoder), built from tiny random weights in LISA's
 * and CLIP's key layouts, against a straightforward PyTorch implementation of
 * transformers 4.31's LLaMA and CLIP (test/fixtures/llm_graphs_reference.py)
 * on the same weights and inputs, in float32 and float16 packs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildVisionEncoderGraph, checkClipSpecAgainstWeights, clipShapesOf, visionEncoderTensors, type ClipVisionSpec } from '../models/converter/graphs/clip.js';
import type { PackDtype } from '../src/engine/floats.js';
import { buildDecoderGraph, buildEmbedTokensGraph, buildSegProjectionGraph, decoderTensorNames } from '../models/converter/graphs/llama.js';
import { type LlamaSpec, checkLlamaSpecAgainstWeights, llamaShapesOf, llamaSpecFromConfig } from '../models/converter/graphs/llama-spec.js';
import { WeightGraph } from '../models/converter/weight-graph.js';
import { MemoryWeights } from '../models/converter/weights.js';
import { UserInputError } from '../src/errors.js';
import { floatToHalf, halfToFloat } from '../src/engine/floats.js';
import { pythonAvailability } from './helpers/python.js';

const { onnx } = onnxProto;
const availability = pythonAvailability();
const SCRIPT = new URL('./fixtures/llm_graphs_reference.py', import.meta.url).pathname;

/** Max |onnx - torch| allowed, relative to the reference's largest magnitude. */
const TOLERANCE = { float32: 1e-5, float16: 1e-2 } as const;

interface Ref {
  file: string;
  shape: number[];
}
interface Call {
  start: number;
  count: number;
  mask: number[];
  positions: number[];
  outputs: Record<string, Ref>;
}
interface LlamaCase {
  spec: LlamaSpec;
  sequences: Record<string, { embeds: Ref; calls: Call[] }>;
  segHidden: Ref;
  segEmbeddings: Ref;
  weights: Record<string, Ref>;
}
interface Manifest {
  llamas: Record<string, LlamaCase>;
  outDim: number;
  clip: { spec: Omit<ClipVisionSpec, 'outHidden'>; outHidden: number; pixelValues: Ref; imageFeatures: Ref; weights: Record<string, Ref>; projector: Record<string, Ref> };
}

type Values = { shape: number[]; data: Float32Array };
type Build = (ctx: { source: MemoryWeights; dtype: PackDtype; graph: WeightGraph; onTensor: (name: string) => void }) => Promise<void>;

const session = (model: Uint8Array | string) => ort.InferenceSession.create(model as Uint8Array, { intraOpNumThreads: 1, interOpNumThreads: 1 });

async function build(source: MemoryWeights, dtype: PackDtype, make: Build, externalDataFile?: string): Promise<{ bytes: Uint8Array; consumed: string[]; weightBytes: number }> {
  const graph = new WeightGraph('graph', externalDataFile ? { externalDataFile } : {});
  const consumed: string[] = [];
  await make({ source, dtype, graph, onTensor: (name) => consumed.push(name) });
  return { bytes: graph.finish(), consumed, weightBytes: graph.weightBytes };
}

function floatFeed(dtype: PackDtype, v: Values): ort.Tensor {
  return dtype === 'float32' ? new ort.Tensor('float32', v.data, v.shape) : new ort.Tensor('float16', Uint16Array.from(v.data, floatToHalf), v.shape);
}

const int64Feed = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), [1, values.length]);

function valuesOf(t: ort.Tensor): Values {
  const data = t.data instanceof Uint16Array ? Float32Array.from(t.data, halfToFloat) : (t.data as Float32Array);
  return { shape: [...t.dims], data };
}

/** max |a - b| and max |b|; NaN counts as a failure. */
function diff(actual: Values, expected: Values): { absolute: number; scale: number } {
  expect(actual.shape).toEqual(expected.shape);
  let absolute = 0;
  let scale = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const d = Math.abs(actual.data[i]! - expected.data[i]!);
    if (!(d <= absolute)) absolute = d;
    scale = Math.max(scale, Math.abs(expected.data[i]!));
  }
  return { absolute, scale };
}

/** The rows [start, start + count) of a [1, N, H] tensor. */
function rows(v: Values, start: number, count: number): Values {
  const width = v.shape[2]!;
  return { shape: [1, count, width], data: v.data.slice(start * width, (start + count) * width) };
}

describe.skipIf(availability.skip)('LLaMA and CLIP graphs built from checkpoint weights match PyTorch', () => {
  let dir = '';
  let manifest: Manifest;
  const load = async (ref: Ref): Promise<Values> => {
    const bytes = await readFile(path.join(dir, ref.file));
    return { shape: ref.shape, data: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
  };
  const weightsOf = async (...sets: Record<string, Ref>[]): Promise<MemoryWeights> => {
    const weights = new MemoryWeights();
    for (const set of sets) for (const [name, ref] of Object.entries(set)) weights.set(name, ref.shape, (await load(ref)).data);
    return weights;
  };
  /** Worst relative error seen per graph and dtype, printed at the end (the numbers the report quotes). */
  const worst = new Map<string, { absolute: number; relative: number }>();
  const check = (label: string, dtype: PackDtype, actual: Values, expected: Values) => {
    const d = diff(actual, expected);
    const key = `${label} ${dtype}`;
    const seen = worst.get(key) ?? { absolute: 0, relative: 0 };
    worst.set(key, { absolute: Math.max(seen.absolute, d.absolute), relative: Math.max(seen.relative, d.absolute / d.scale) });
    expect(d.absolute / d.scale, key).toBeLessThan(TOLERANCE[dtype]);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lisa-llm-graphs-'));
    await promisify(execFile)(availability.python, [SCRIPT, '--out', dir], { timeout: 120_000 });
    manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  }, 180_000);

  afterAll(async () => {
    for (const [key, d] of worst) console.log(`${key}: max abs diff ${d.absolute.toExponential(2)} (relative ${d.relative.toExponential(2)})`);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Feeds one call of a sequence; past from the previous call's presents. */
  function decoderFeeds(dtype: PackDtype, spec: LlamaSpec, embeds: Values, call: { start: number; count: number; mask: number[]; positions: number[] }, past?: ort.InferenceSession.OnnxValueMapType) {
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: floatFeed(dtype, rows(embeds, call.start, call.count)),
      attention_mask: int64Feed(call.mask),
      position_ids: int64Feed(call.positions),
    };
    for (let i = 0; i < spec.layers; i++) {
      for (const part of ['key', 'value']) {
        feeds[`past_key_values.${i}.${part}`] =
          (past?.[`present.${i}.${part}`] as ort.Tensor | undefined) ?? floatFeed(dtype, { shape: [1, spec.kvHeads, 0, spec.headDim], data: new Float32Array(0) });
      }
    }
    return feeds;
  }

  for (const key of ['gqa', 'mha']) {
    for (const dtype of ['float32', 'float16'] as const) {
      it(`decoder (${key}, ${dtype}): a prefill, a step and a 3-token draft, and a left-padded prompt, as transformers computes them`, async () => {
        const c = manifest.llamas[key]!;
        const weights = await weightsOf(c.weights);
        const { bytes, consumed } = await build(weights, dtype, (ctx) => buildDecoderGraph(ctx, c.spec));
        expect(consumed).toEqual(decoderTensorNames(c.spec));
        const decoder = await session(bytes);
        for (const sequence of Object.values(c.sequences)) {
          const embeds = await load(sequence.embeds);
          let past: ort.InferenceSession.OnnxValueMapType | undefined;
          for (const call of sequence.calls) {
            const out = await decoder.run(decoderFeeds(dtype, c.spec, embeds, call, past));
            for (const [name, ref] of Object.entries(call.outputs)) {
              expect(out[name]!.type).toBe(dtype);
              check(`decoder ${name.replace(/^present\.\d+\./, 'present.')}`, dtype, valuesOf(out[name]!), await load(ref));
            }
            past = out;
          }
        }
        await decoder.release();
      });
    }
  }

  it('decoder: a prompt fed in one call and in two calls gives the same logits and cache', async () => {
    const c = manifest.llamas.gqa!;
    const decoder = await session((await build(await weightsOf(c.weights), 'float32', (ctx) => buildDecoderGraph(ctx, c.spec))).bytes);
    const embeds = await load(c.sequences.plain!.embeds);
    const all = Array.from({ length: 11 }, (_, i) => i);
    const whole = await decoder.run(decoderFeeds('float32', c.spec, embeds, { start: 0, count: 11, mask: all.map(() => 1), positions: all }));
    const first = await decoder.run(decoderFeeds('float32', c.spec, embeds, { start: 0, count: 7, mask: all.slice(0, 7).map(() => 1), positions: all.slice(0, 7) }));
    const second = await decoder.run(decoderFeeds('float32', c.spec, embeds, { start: 7, count: 4, mask: all.map(() => 1), positions: all.slice(7) }, first));
    for (const [name, part] of Object.entries(second)) {
      const expected = name === 'logits' || name === 'last_hidden_state' ? rows(valuesOf(whole[name]!), 7, 4) : valuesOf(whole[name]!);
      const d = diff(valuesOf(part), expected);
      expect(d.absolute / d.scale, name).toBeLessThan(1e-5);
    }
    await decoder.release();
  });

  it('decoder: float16 weights in external data load and give the same outputs as inline weights', async () => {
    const c = manifest.llamas.mha!;
    const weights = await weightsOf(c.weights);
    const file = path.join(dir, 'decoder.onnx');
    const external = await build(weights, 'float16', (ctx) => buildDecoderGraph(ctx, c.spec), `${file}.data`);
    const inlineBuild = await build(weights, 'float16', (ctx) => buildDecoderGraph(ctx, c.spec));
    const float32Build = await build(weights, 'float32', (ctx) => buildDecoderGraph(ctx, c.spec));
    // Every decoder weight is stored in the pack dtype, and none stays inside an external-data graph.
    expect(external.weightBytes * 2).toBe(float32Build.weightBytes);
    const initializer = onnx.ModelProto.decode(external.bytes).graph?.initializer ?? [];
    const inlineBytes = initializer.filter((t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL).reduce((sum, t) => sum + (t.rawData?.length ?? 0), 0);
    expect(inlineBytes).toBeLessThan(1000);
    expect((await stat(`${file}.data`)).size).toBeGreaterThanOrEqual(external.weightBytes);
    await writeFile(file, external.bytes);
    const inline = await session(inlineBuild.bytes);
    const fromFile = await session(file);
    const embeds = await load(c.sequences.plain!.embeds);
    const call = c.sequences.plain!.calls[0]!;
    const a = await inline.run(decoderFeeds('float16', c.spec, embeds, call));
    const b = await fromFile.run(decoderFeeds('float16', c.spec, embeds, call));
    for (const name of Object.keys(a)) expect(Array.from(b[name]!.data as Uint16Array), name).toEqual(Array.from(a[name]!.data as Uint16Array));
    await Promise.all([inline.release(), fromFile.release()]);
  });

  for (const dtype of ['float32', 'float16'] as const) {
    it(`embed_tokens (${dtype}) gathers model.embed_tokens rows`, async () => {
      const c = manifest.llamas.gqa!;
      const table = await load(c.weights['model.embed_tokens.weight']!);
      const ids = [3, 0, c.spec.vocab - 1, 3];
      const embed = await session((await build(await weightsOf(c.weights), dtype, (ctx) => buildEmbedTokensGraph(ctx, c.spec))).bytes);
      const out = valuesOf((await embed.run({ input_ids: int64Feed(ids) })).inputs_embeds!);
      const H = c.spec.hidden;
      // The weights are float16 values already: the gather is exact in both dtypes.
      expect(out).toEqual({ shape: [1, 4, H], data: Float32Array.from(ids.flatMap((id) => Array.from(table.data.subarray(id * H, (id + 1) * H)))) });
      await embed.release();
    });

    it(`seg_projection (${dtype}) is text_hidden_fcs, float32 out`, async () => {
      const c = manifest.llamas.gqa!;
      const spec = { hidden: c.spec.hidden, outDim: manifest.outDim };
      const projection = await session((await build(await weightsOf(c.weights), dtype, (ctx) => buildSegProjectionGraph(ctx, spec))).bytes);
      const out = (await projection.run({ seg_hidden: floatFeed(dtype, await load(c.segHidden)) })).seg_embeddings!;
      expect(out.type).toBe('float32');
      check('seg_projection', dtype, valuesOf(out), await load(c.segEmbeddings));
      await projection.release();
    });

    it(`vision_encoder (${dtype}): CLIP up to hidden_states[-2], patch rows, mm_projector`, async () => {
      const m = manifest.clip;
      const spec: ClipVisionSpec = { ...m.spec, outHidden: m.outHidden };
      const clipSource = await weightsOf(m.weights);
      const source = await weightsOf(m.projector);
      const graph = new WeightGraph('vision_encoder');
      const consumed: string[] = [];
      await buildVisionEncoderGraph({ source, clipSource, dtype, graph, onTensor: (name) => consumed.push(name) }, spec);
      expect(consumed).toEqual(visionEncoderTensors({ source, clipSource }, spec).map((t) => t.name));
      const encoder = await session(graph.finish());
      const out = (await encoder.run({ pixel_values: floatFeed('float32', await load(m.pixelValues)) })).image_features!;
      expect(out.type).toBe(dtype);
      check('vision_encoder', dtype, valuesOf(out), await load(m.imageFeatures));
      await encoder.release();
    });
  }

  it('reads the LLaMA and CLIP sizes from the tensor shapes, and checks config.json against them', async () => {
    const c = manifest.llamas.gqa!;
    const llama = await weightsOf(c.weights);
    const { hidden, vocab, layers, intermediate, heads, kvHeads, headDim } = c.spec;
    expect(llamaShapesOf(llama)).toEqual({ hidden, vocab, layers, intermediate, queryWidth: heads * headDim, kvWidth: kvHeads * headDim, headDim });
    const config = { hidden_size: hidden, intermediate_size: intermediate, num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kvHeads, rms_norm_eps: 1e-6, vocab_size: vocab };
    expect(() => checkLlamaSpecAgainstWeights(llamaSpecFromConfig(config), llamaShapesOf(llama))).not.toThrow();
    expect(() => checkLlamaSpecAgainstWeights(llamaSpecFromConfig({ ...config, num_hidden_layers: 3 }), llamaShapesOf(llama))).toThrow(
      'config.json gives num_hidden_layers = 3, but the LLaMA weights give 2.',
    );
    const clip = await weightsOf(manifest.clip.weights);
    const s = manifest.clip.spec;
    expect(clipShapesOf(clip)).toEqual({ hidden: s.hidden, patch: s.patch, imageSize: s.imageSize, layers: s.layers, intermediate: s.intermediate });
    expect(() => checkClipSpecAgainstWeights({ ...s, outHidden: 1, imageSize: 224 }, clipShapesOf(clip))).toThrow('image_size = 224, but its weights give 42');
  });
});

describe('LLaMA graph builders refuse what they cannot build', () => {
  const spec: LlamaSpec = { hidden: 8, layers: 1, heads: 2, kvHeads: 2, headDim: 4, intermediate: 12, vocab: 5, rmsNormEps: 1e-6, ropeTheta: 10000 };
  const refusal = async (make: Build, weights = new MemoryWeights()) => {
    const error = await build(weights, 'float32', make).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('checkpoint_invalid');
    return (error as UserInputError).message;
  };

  it('names a tensor whose shape does not fit config.json', async () => {
    const weights = new MemoryWeights({ 'model.embed_tokens.weight': { shape: [5, 6], data: new Float32Array(30) } });
    expect(await refusal((ctx) => buildEmbedTokensGraph(ctx, spec), weights)).toBe(
      'The checkpoint\'s tensor "model.embed_tokens.weight" in (memory) is [5,6], expected [5,8] (from config.json and the other weights).',
    );
  });

  it('names a missing tensor', async () => {
    expect(await refusal((ctx) => buildDecoderGraph(ctx, spec))).toBe('The checkpoint has no tensor "model.layers.0.input_layernorm.weight".');
  });

  it('refuses rope_scaling and head counts that do not divide', async () => {
    expect(await refusal((ctx) => buildDecoderGraph(ctx, { ...spec, ropeScaling: { type: 'linear', factor: 2 } }))).toBe(
      'config.json: rope_scaling {"type":"linear","factor":2} is not supported (LISA\'s LLaMA uses none).',
    );
    expect(await refusal((ctx) => buildDecoderGraph(ctx, { ...spec, kvHeads: 3 }))).toContain('num_attention_heads 2 is not a multiple of num_key_value_heads 3');
  });
});
