/**
 * Quantized packs (`lisa-bot models convert --quantize int4|int8`): the block
 * packing against a plain reading of MatMulNBits' layout, the round-trip error
 * against the bound the rounding gives, the converter's Linears against
 * onnxruntime's own MatMulNBits on random matrices, and the flags' checks.
 * The quality on the converted fixtures is in converter-quantize-packs.test.ts.
 */
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { PackDtype } from '../src/engine/floats.js';
import { GraphOps } from '../models/converter/graphs/layers.js';
import { type PackedWeight, type QuantBits, dequantize, quantizeBlockwise } from '../models/converter/quantize.js';
import { WeightGraph } from '../models/converter/weight-graph.js';
import { MemoryWeights } from '../models/converter/weights.js';
import { floatToHalf, halfToFloat } from '../src/engine/floats.js';
import { cli } from './helpers/cli.js';

/** Deterministic values in [-1, 1). */
function randoms(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return new Float32Array(count).map(() => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/**
 * MatMulNBits' B read as its specification says, independently of quantize.ts:
 * B [N, kBlocks, blockSize * bits / 8], codes low bits first along K, value
 * (code - 2^(bits-1)) * scale when no zero points are given.
 */
function readSpecLayout(w: PackedWeight): { values: Float32Array; padding: number[] } {
  const perByte = 8 / w.bits;
  const values = new Float32Array(w.n * w.k);
  const padding: number[] = [];
  for (let row = 0; row < w.n; row++) {
    for (let col = 0; col < w.kBlocks * w.blockSize; col++) {
      const block = Math.floor(col / w.blockSize);
      const within = col % w.blockSize;
      const byte = w.codes[(row * w.kBlocks + block) * w.blobSize + Math.floor(within / perByte)]!;
      const shift = (within % perByte) * w.bits;
      const code = (byte >> shift) & ((1 << w.bits) - 1);
      if (col >= w.k) padding.push(code);
      else values[row * w.k + col] = (code - 2 ** (w.bits - 1)) * w.scales[row * w.kBlocks + block]!;
    }
  }
  return { values, padding };
}

describe('block quantization in MatMulNBits layout', () => {
  for (const bits of [4, 8] as const) {
    for (const scaleType of ['float32', 'float16'] as const) {
      it(`int${bits}, ${scaleType} scales: the layout onnxruntime reads, K padded with zeros, each value within the rounding bound`, () => {
        const [n, k, blockSize] = [7, 70, 32]; // 70 = 2 blocks + 6 values: the last block is padded
        const data = randoms(n * k, bits * 31 + scaleType.length);
        const w = quantizeBlockwise(data, n, k, { bits, blockSize }, scaleType);
        expect([w.kBlocks, w.blobSize, w.codes.length, w.scales.length]).toEqual([3, (blockSize * bits) / 8, n * 3 * ((blockSize * bits) / 8), n * 3]);

        const { values, padding } = readSpecLayout(w);
        expect(values).toEqual(dequantize(w));
        // Padding dequantizes to zero: the zero point, 2^(bits-1).
        expect(padding).toHaveLength(n * (3 * blockSize - k));
        expect(new Set(padding)).toEqual(new Set([2 ** (bits - 1)]));

        const zero = 2 ** (bits - 1);
        for (let row = 0; row < n; row++) {
          for (let b = 0; b < w.kBlocks; b++) {
            const scale = w.scales[row * w.kBlocks + b]!;
            if (scaleType === 'float16') expect(halfToFloat(floatToHalf(scale))).toBe(scale);
            for (let col = b * blockSize; col < Math.min(k, (b + 1) * blockSize); col++) {
              const v = data[row * k + col]!;
              const error = Math.abs(v - values[row * k + col]!);
              // Rounding to the nearest step is off by half a step, except values at the top of the
              // range opposite the block's extreme (which sits on code 0): code 2^bits - 1 is the
              // last there, so they are off by up to one step.
              const steps = v / scale > zero - 0.5 ? 1 : 0.5;
              expect(error).toBeLessThanOrEqual(steps * Math.abs(scale) * (1 + 1e-6) + 1e-7);
            }
          }
        }
      });
    }
  }

  it('a block of zeros has scale 0 and dequantizes to zeros', () => {
    const w = quantizeBlockwise(new Float32Array(64), 2, 32, { bits: 4, blockSize: 32 });
    expect([...w.scales]).toEqual([0, 0]);
    expect(dequantize(w).every((v) => v === 0)).toBe(true);
  });
});

/** y = x @ dequant(W)^T in float64, W as the converter quantized it. */
function referenceProduct(x: Float32Array, rows: number, w: Float32Array, n: number, k: number): Float32Array {
  const y = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let t = 0; t < k; t++) sum += x[r * k + t]! * w[j * k + t]!;
      y[r * n + j] = sum;
    }
  }
  return y;
}

async function runLinear(dtype: PackDtype, bits: QuantBits, build: (ops: GraphOps, x: string) => Promise<string>, x: Float32Array, rows: number, k: number, n: number, source: MemoryWeights) {
  const graph = new WeightGraph('linear');
  const ops = new GraphOps({ source, dtype, graph, quantization: { bits, blockSize: 32 } });
  const input = graph.input('x', dtype, [1, 'rows', k]);
  graph.output('y', await build(ops, input), dtype, [1, 'rows', n]);
  const model = graph.finish();
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const feed = dtype === 'float32' ? new ort.Tensor('float32', x, [1, rows, k]) : new ort.Tensor('float16', Uint16Array.from(x, floatToHalf), [1, rows, k]);
    const y = (await session.run({ x: feed })).y!;
    return { y: y.data instanceof Uint16Array ? Float32Array.from(y.data, halfToFloat) : (y.data as Float32Array), model };
  } finally {
    await session.release();
  }
}

function maxRelativeDiff(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  return diff / scale;
}

describe("the converter's Linears as onnxruntime's MatMulNBits (CPU)", () => {
  // accuracy_level 4 (quantize.ts) lets the CPU kernel round the activations to int8 per block:
  // a relative error of about 1/127 per block of x, far below it over a long dot product.
  const TOLERANCE = 1e-2;
  for (const dtype of ['float32', 'float16'] as const) {
    for (const bits of [4, 8] as const) {
      for (const k of [64, 172]) {
        it(`${dtype} int${bits}, K = ${k}: x @ W^T with W as quantized`, async () => {
          const [n, rows] = [24, 3];
          const weight = randoms(n * k, k + bits);
          const x = randoms(rows * k, 5 * k + bits);
          const xUsed = dtype === 'float32' ? x : Float32Array.from(x, (v) => halfToFloat(floatToHalf(v)));
          const source = new MemoryWeights({ 'proj.weight': { shape: [n, k], data: weight } });
          const { y, model } = await runLinear(dtype, bits, (ops, input) => ops.linear(input, source, 'proj', k, n, false), x, rows, k, n, source);
          const quantized = dequantize(quantizeBlockwise(weight, n, k, { bits, blockSize: 32 }, dtype));
          expect(maxRelativeDiff(y, referenceProduct(xUsed, rows, quantized, n, k))).toBeLessThanOrEqual(TOLERANCE);
          expect(Buffer.from(model).includes('MatMulNBits')).toBe(true);
          // The codes, not a float copy of the weight: well under the float32 matrix's bytes.
          expect(model.byteLength).toBeLessThan(n * k * (bits === 4 ? 1 : 2));
        });
      }
    }
  }

  it('a packed Linear (QKV, gate+up) gives each part what its own Linear gives', async () => {
    const [k, rows] = [96, 2];
    const parts = [
      { prefix: 'q', outDim: 32 },
      { prefix: 'k', outDim: 16 },
      { prefix: 'v', outDim: 16 },
    ];
    const source = new MemoryWeights(Object.fromEntries(parts.map((p, i) => [`${p.prefix}.weight`, { shape: [p.outDim, k], data: randoms(p.outDim * k, 40 + i) }])));
    const x = randoms(rows * k, 9);
    const packed = await runLinear('float32', 4, (ops, input) => ops.linearPacked(input, source, parts, k), x, rows, k, 64, source);
    let column = 0;
    for (const part of parts) {
      const alone = await runLinear('float32', 4, (ops, input) => ops.linear(input, source, part.prefix, k, part.outDim, false), x, rows, k, part.outDim, source);
      for (let r = 0; r < rows; r++) {
        expect(packed.y.slice(r * 64 + column, r * 64 + column + part.outDim)).toEqual(alone.y.slice(r * part.outDim, (r + 1) * part.outDim));
      }
      column += part.outDim;
    }
  });
});

describe('lisa-bot models convert --quantize / --block-size', () => {
  const convert = (extra: string[]) => cli(['models', 'convert', '--checkpoint', '/nonexistent/lisa', '--out', '/nonexistent/out', ...extra]);
  const expectRefused = (result: { code: number; stderr: string }, pattern: RegExp) => {
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(pattern);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  };

  it('refuses a bit width other than int4 or int8', async () => {
    expectRefused(await convert(['--quantize', 'int3']), /--quantize.*'int3' is invalid\. Allowed choices are int4, int8/);
  });

  it('refuses block sizes MatMulNBits cannot load, naming the ones it can', async () => {
    for (const size of ['48', '8', '512', 'abc']) {
      expectRefused(await convert(['--quantize', 'int4', '--block-size', size]), new RegExp(`--block-size must be one of 16, 32, 64, 128, 256 .*not "${size}"`));
    }
  });

  it('refuses --block-size without --quantize', async () => {
    expectRefused(await convert(['--block-size', '64']), /--block-size applies to quantized packs only: add --quantize int4 or --quantize int8/);
  });

  it('says in its help what is quantized and what stays float', async () => {
    const help = await cli(['models', 'convert', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toMatch(/--quantize <bits> the LLM decoder's linear layers as int4 or int8 MatMulNBits .*vision, SAM and the \[SEG\] projection stay float/);
  });
});
