import ort from 'onnxruntime-node';
import { type PackDtype, halfToFloat } from './floats.js';

/**
 * Tensor helpers. Floating tensors of the LLM side are in the pack's dtype;
 * float16 data travels as raw Uint16Array bits (Node 20 has no Float16Array)
 * and is converted only where the engine reads values (argmax) — everywhere
 * else rows are copied bit for bit, so float16 packs cost no conversions.
 */
export type FloatData = Float32Array | Uint16Array;

export function allocFloat(dtype: PackDtype, length: number): FloatData {
  return dtype === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

export function floatTensor(dtype: PackDtype, data: FloatData, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor(dtype, data, dims);
}

export function int64Tensor(values: ArrayLike<number>, dims: readonly number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return new ort.Tensor('int64', data, dims);
}

/** The data of a pack-dtype output, typed for copying rows. */
export function floatData(tensor: ort.Tensor): FloatData {
  const data = tensor.data;
  if (data instanceof Float32Array || data instanceof Uint16Array) return data;
  throw new Error(`expected a float32 or float16 tensor, got ${tensor.type}`);
}

/** Index of the largest value in `data[offset, offset + length)` (first on ties). */
export function argmax(data: FloatData, offset: number, length: number): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  const half = data instanceof Uint16Array;
  for (let i = 0; i < length; i++) {
    const raw = data[offset + i]!;
    const value = half ? halfToFloat(raw) : raw;
    if (value > bestValue) {
      bestValue = value;
      best = i;
    }
  }
  return best;
}

/**
 * Keeps the first `length` positions of a [1, K, P, D] KV tensor — the part a
 * follow-up shares with the previous conversation (attention is causal, so
 * those entries do not depend on anything after them).
 */
export function truncateKv(tensor: ort.Tensor, length: number): ort.Tensor {
  const [, heads, past, dim] = tensor.dims as [number, number, number, number];
  if (length === past) return tensor;
  const source = floatData(tensor);
  const target = allocFloat(tensor.type as PackDtype, heads * length * dim);
  for (let k = 0; k < heads; k++) {
    target.set(source.subarray(k * past * dim, k * past * dim + length * dim), k * length * dim);
  }
  return new ort.Tensor(tensor.type as PackDtype, target, [1, heads, length, dim]);
}

/** Copies `length` elements between arrays of the same dtype (float16 bits stay bits). */
export function copyFloats(target: FloatData, targetStart: number, source: FloatData, sourceStart: number, length: number): void {
  (target as Float32Array).set((source as Float32Array).subarray(sourceStart, sourceStart + length), targetStart);
}
