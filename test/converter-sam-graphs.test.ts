/**
 * The converter's SAM graphs, built from a tiny SAM in the checkpoint's
 * layout, against an independent PyTorch implementation
 * (test/fixtures/sam_reference.py) on the same weights and inputs, in
 * float32 and float16 packs, with one and two [SEG] prompts.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniformValues } from '../models/generator/bench-random.js';
import { buildSamImageEncoderGraph, samImageEncoderTensors } from '../models/converter/graphs/sam-image-encoder.js';
import { buildSamMaskDecoderGraph, samMaskDecoderTensors } from '../models/converter/graphs/sam-mask-decoder.js';
import { readSamImageEncoderSpec, readSamMaskDecoderSpec } from '../models/converter/graphs/sam-spec.js';
import { WeightGraph } from '../models/converter/weight-graph.js';
import type { MemoryWeights, TensorInfo, WeightSource } from '../models/converter/weights.js';
import { UserInputError } from '../src/errors.js';
import { pythonAvailability } from './helpers/python.js';
import { memoryBundle, tinySamWeights, writeBundle } from './helpers/sam-weights.js';

const availability = pythonAvailability();
const SCRIPT = new URL('./fixtures/sam_reference.py', import.meta.url).pathname;

/**
 * Max |onnx - torch| allowed, relative to the reference's largest magnitude.
 * Float16 packs are held to float32 PyTorch: what a user compares them with.
 */
const TOLERANCE = { float32: 2e-5, float16: 1e-2 } as const;

type Tensors = Record<string, { shape: number[]; data: Float32Array }>;

async function readBundle(base: string): Promise<Tensors> {
  const index = JSON.parse(await readFile(`${base}.json`, 'utf8')) as Record<string, { shape: number[]; offset: number }>;
  const bytes = await readFile(`${base}.bin`);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const out: Tensors = {};
  for (const [name, t] of Object.entries(index)) out[name] = { shape: t.shape, data: all.slice(t.offset, t.offset + t.shape.reduce((a, b) => a * b, 1)) };
  return out;
}

function random(name: string, shape: number[]): { shape: number[]; data: Float32Array } {
  return { shape, data: uniformValues(`sam-test-input/${name}`, shape.reduce((a, b) => a * b, 1), 1) };
}

/** max |a - b| / max |b|, and max |b| (to print). */
function compare(actual: ort.Tensor, expected: { shape: number[]; data: Float32Array }): { relative: number; absolute: number; scale: number } {
  expect(actual.dims).toEqual(expected.shape);
  const a = actual.data as Float32Array;
  let absolute = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - expected.data[i]!);
    if (!(d <= absolute)) absolute = d; // NaN propagates as a failure
    scale = Math.max(scale, Math.abs(expected.data[i]!));
  }
  return { relative: absolute / scale, absolute, scale };
}

async function build(
  weights: MemoryWeights,
  kind: 'encoder' | 'decoder',
  dtype: 'float32' | 'float16',
): Promise<{ session: ort.InferenceSession; consumed: string[] }> {
  const graph = new WeightGraph(kind === 'encoder' ? 'sam_image_encoder' : 'sam_mask_decoder');
  const consumed: string[] = [];
  const ctx = { source: weights, dtype, graph, onTensor: (name: string) => consumed.push(name) };
  if (kind === 'encoder') await buildSamImageEncoderGraph(ctx, readSamImageEncoderSpec(weights));
  else await buildSamMaskDecoderGraph(ctx, readSamMaskDecoderSpec(weights));
  const session = await ort.InferenceSession.create(graph.finish(), { intraOpNumThreads: 2, interOpNumThreads: 1 });
  return { session, consumed };
}

const feed = (t: { shape: number[]; data: Float32Array }) => new ort.Tensor('float32', t.data, t.shape);

describe.skipIf(availability.skip)('SAM graphs built from checkpoint weights match PyTorch', () => {
  const weights = tinySamWeights();
  const inputs: Tensors = {
    pixel_values: random('pixel_values', [1, 3, 1024, 1024]),
    image_embeddings: random('image_embeddings', [1, 256, 64, 64]),
    seg_embeddings: random('seg_embeddings', [2, 256]),
  };
  let dir = '';
  let reference: Tensors = {};

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lisa-sam-graphs-'));
    await memoryBundle(path.join(dir, 'weights'), weights);
    await writeBundle(path.join(dir, 'inputs'), inputs);
    const args = [SCRIPT, path.join(dir, 'weights'), path.join(dir, 'inputs'), path.join(dir, 'out')];
    await promisify(execFile)(availability.python, args, { timeout: 240_000 });
    reference = await readBundle(path.join(dir, 'out'));
  }, 300_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads SAM sizes from the tensor shapes', () => {
    expect(readSamImageEncoderSpec(weights)).toMatchObject({ imageSize: 1024, patch: 16, grid: 64, width: 32, heads: 2, headDim: 16, mlp: 128, windows: [14, 0], outChannels: 256 });
    expect(readSamMaskDecoderSpec(weights)).toMatchObject({ dim: 256, grid: 64, heads: 8, depth: 2, mlp: 64, selfInner: 256, crossInner: 128, maskTokens: 4, upscale: [64, 32], hyperLayers: 3, iouLayers: 3 });
  });

  for (const dtype of ['float32', 'float16'] as const) {
    it(`sam_image_encoder (${dtype}) gives PyTorch's image embeddings`, async () => {
      const { session, consumed } = await build(weights, 'encoder', dtype);
      expect(consumed.sort()).toEqual(samImageEncoderTensors(readSamImageEncoderSpec(weights)).sort());
      const out = await session.run({ pixel_values: feed(inputs.pixel_values!) });
      const diff = compare(out.image_embeddings!, reference.image_embeddings!);
      console.log(`sam_image_encoder ${dtype}: max abs diff ${diff.absolute.toExponential(2)} (output scale ${diff.scale.toFixed(2)})`);
      expect(diff.relative).toBeLessThan(TOLERANCE[dtype]);
      await session.release();
    });

    it(`sam_mask_decoder (${dtype}) gives PyTorch's masks and IoU for one and two prompts`, async () => {
      const { session, consumed } = await build(weights, 'decoder', dtype);
      expect(consumed.sort()).toEqual(samMaskDecoderTensors(readSamMaskDecoderSpec(weights)).sort());
      for (const n of [1, 2]) {
        const seg = inputs.seg_embeddings!;
        const out = await session.run({
          image_embeddings: feed(inputs.image_embeddings!),
          seg_embeddings: new ort.Tensor('float32', seg.data.slice(0, n * 256), [n, 256]),
        });
        const masks = compare(out.low_res_masks!, reference[`low_res_masks.${n}`]!);
        const iou = compare(out.iou_predictions!, reference[`iou_predictions.${n}`]!);
        console.log(
          `sam_mask_decoder ${dtype}, N=${n}: masks max abs diff ${masks.absolute.toExponential(2)} (scale ${masks.scale.toFixed(2)}), ` +
            `IoU ${iou.absolute.toExponential(2)} (scale ${iou.scale.toFixed(2)})`,
        );
        expect(masks.relative).toBeLessThan(TOLERANCE[dtype]);
        expect(iou.relative).toBeLessThan(TOLERANCE[dtype]);
      }
      await session.release();
    });
  }
});

/** Shapes without values: enough for the spec readers, which never read data. */
function shapesOnly(shapes: Record<string, number[]>): WeightSource {
  return {
    names: Object.keys(shapes),
    info: (name): TensorInfo | undefined => shapes[name] && { name, dtype: 'float32', shape: shapes[name]!, file: 'pytorch_model-00002-of-00002.bin' },
    readFloat32: () => Promise.reject(new Error('shapes only')),
    close: async () => {},
  };
}

/** SAM ViT-H as LISA's checkpoints hold it (CONVERTER.md), plus the prompt encoder / mask decoder shapes. */
function samVitHShapes(): Record<string, number[]> {
  const e = 'model.visual_model.image_encoder.';
  const shapes: Record<string, number[]> = { [`${e}patch_embed.proj.weight`]: [1280, 3, 16, 16], [`${e}pos_embed`]: [1, 64, 64, 1280] };
  for (let i = 0; i < 32; i++) {
    const rows = [7, 15, 23, 31].includes(i) ? 127 : 27;
    shapes[`${e}blocks.${i}.attn.rel_pos_h`] = [rows, 80];
    shapes[`${e}blocks.${i}.attn.rel_pos_w`] = [rows, 80];
    shapes[`${e}blocks.${i}.mlp.lin1.weight`] = [5120, 1280];
  }
  shapes[`${e}neck.0.weight`] = [256, 1280, 1, 1];
  const d = 'model.visual_model.mask_decoder.';
  Object.assign(shapes, { [`${d}iou_token.weight`]: [1, 256], [`${d}mask_tokens.weight`]: [4, 256] });
  for (let i = 0; i < 2; i++) {
    shapes[`${d}transformer.layers.${i}.self_attn.q_proj.weight`] = [256, 256];
    shapes[`${d}transformer.layers.${i}.cross_attn_token_to_image.q_proj.weight`] = [128, 256];
    shapes[`${d}transformer.layers.${i}.mlp.lin1.weight`] = [2048, 256];
  }
  Object.assign(shapes, { [`${d}output_upscaling.0.weight`]: [256, 64, 2, 2], [`${d}output_upscaling.3.weight`]: [64, 32, 2, 2] });
  for (let i = 0; i < 3; i++) {
    shapes[`${d}output_hypernetworks_mlps.0.layers.${i}.weight`] = [i === 2 ? 32 : 256, 256];
    shapes[`${d}iou_prediction_head.layers.${i}.weight`] = [i === 2 ? 4 : 256, 256];
  }
  return shapes;
}

describe('SAM sizes and refusals', () => {
  it("reads SAM ViT-H's sizes from the published shapes", () => {
    const source = shapesOnly(samVitHShapes());
    const windows = Array.from({ length: 32 }, (_, i) => ([7, 15, 23, 31].includes(i) ? 0 : 14));
    expect(readSamImageEncoderSpec(source)).toEqual({
      prefix: 'model.visual_model.image_encoder.',
      ...{ imageSize: 1024, patch: 16, grid: 64, width: 1280, heads: 16, headDim: 80, mlp: 5120, windows, outChannels: 256 },
    });
    expect(readSamMaskDecoderSpec(source)).toMatchObject({ dim: 256, grid: 64, heads: 8, depth: 2, mlp: 2048, selfInner: 256, crossInner: 128, maskTokens: 4, upscale: [64, 32] });
  });

  const refusal = (shapes: Record<string, number[]>, read: (s: WeightSource) => unknown, text: RegExp) => {
    let error: unknown;
    try {
      read(shapesOnly(shapes));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('checkpoint_invalid');
    expect((error as Error).message).toMatch(text);
  };

  it('refuses relative-position tables it would have to interpolate or that do not fit the grid', () => {
    const b = 'model.visual_model.image_encoder.blocks.3.attn.';
    refusal({ ...samVitHShapes(), [`${b}rel_pos_h`]: [28, 80], [`${b}rel_pos_w`]: [28, 80] }, readSamImageEncoderSpec, /block 3's rel_pos_h \[28,80\]/);
    refusal({ ...samVitHShapes(), [`${b}rel_pos_w`]: [127, 80] }, readSamImageEncoderSpec, /block 3/);
    refusal({ ...samVitHShapes(), [`${b}rel_pos_h`]: [129, 80], [`${b}rel_pos_w`]: [129, 80] }, readSamImageEncoderSpec, /larger than the 64x64/);
    refusal({ ...samVitHShapes(), [`${b}rel_pos_h`]: [27, 64], [`${b}rel_pos_w`]: [27, 64] }, readSamImageEncoderSpec, /head dimension 64/);
  });

  it('refuses a decoder whose attention widths do not split into the heads, and a missing block', () => {
    refusal(samVitHShapes(), (s) => readSamMaskDecoderSpec(s, { heads: 6 }), /does not split into 6 heads/);
    const shapes = samVitHShapes();
    delete shapes['model.visual_model.image_encoder.blocks.5.attn.rel_pos_h'];
    refusal(shapes, readSamImageEncoderSpec, /"model\.visual_model\.image_encoder\.blocks\.5\.attn\.rel_pos_h"/);
  });

  it('names the tensor whose shape does not fit while building', async () => {
    const weights = tinySamWeights();
    const qkv = 'model.visual_model.image_encoder.blocks.1.attn.qkv.weight';
    weights.set(qkv, [96, 33], new Float32Array(96 * 33));
    const graph = new WeightGraph('sam_image_encoder');
    const build = buildSamImageEncoderGraph({ source: weights, dtype: 'float32', graph }, readSamImageEncoderSpec(weights));
    await expect(build).rejects.toThrow(/"model\.visual_model\.image_encoder\.blocks\.1\.attn\.qkv\.weight" in \(memory\) is \[96,33\], expected \[96,32\]/);
  });
});
