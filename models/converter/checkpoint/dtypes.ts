/**
 * Element types as stored on disk, and their widening to float32. Both
 * checkpoint formats store little-endian bytes; typed arrays read the host's
 * order, so a big-endian host is refused once, here, rather than producing
 * silently byte-swapped weights.
 */
import { endianness } from 'node:os';
import type { SourceDtype } from '../weights.js';

export const ITEM_SIZE: Record<SourceDtype, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

let halfTable: Float32Array | undefined;

/** Every float16 bit pattern as float32: exact (subnormals, inf, NaN included) and cheap per element. */
function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) halfTable[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) halfTable[h] = mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else halfTable[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

/**
 * `bytes` (little-endian elements of `dtype`, starting at byte 0 of its own
 * ArrayBuffer so every view is aligned) as float32 values.
 */
export function toFloat32(bytes: Uint8Array, dtype: SourceDtype): Float32Array {
  if (endianness() !== 'LE') throw new Error('Checkpoints can only be read on a little-endian machine.');
  const count = bytes.byteLength / ITEM_SIZE[dtype];
  const { buffer, byteOffset } = bytes;
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, count);
    case 'bfloat16': {
      // bfloat16 is the top half of a float32: shifting the bits back is exact.
      const src = new Uint16Array(buffer, byteOffset, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'float16': {
      const src = new Uint16Array(buffer, byteOffset, count);
      const table = float16Table();
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[src[i]];
      return out;
    }
    case 'float64':
      return Float32Array.from(new Float64Array(buffer, byteOffset, count));
    case 'int64': {
      const src = new BigInt64Array(buffer, byteOffset, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(src[i]);
      return out;
    }
    case 'int32':
      return Float32Array.from(new Int32Array(buffer, byteOffset, count));
    case 'int16':
      return Float32Array.from(new Int16Array(buffer, byteOffset, count));
    case 'int8':
      return Float32Array.from(new Int8Array(buffer, byteOffset, count));
    case 'uint8':
    case 'bool':
      return Float32Array.from(bytes);
  }
}

export const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = step;
    step *= shape[i];
  }
  return strides;
}

/** Whether a strided view is laid out row-major without gaps (size-1 dimensions may have any stride). */
export function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  const expected = contiguousStrides(shape);
  return shape.every((d, i) => d === 1 || stride[i] === expected[i]);
}

/** One past the highest element a view touches, relative to its offset (0 for an empty view). */
export function viewSpan(shape: readonly number[], stride: readonly number[]): number {
  if (shape.some((d) => d === 0)) return 0;
  return 1 + shape.reduce((sum, d, i) => sum + (d - 1) * stride[i], 0);
}
