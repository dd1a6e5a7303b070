/**
 * Block quantization of Linear weights into the layout of onnxruntime's
 * `com.microsoft` MatMulNBits: for a torch weight W [N = out, K = in], K is cut
 * into blocks of `blockSize`; each (row, block) has one scale and its codes,
 * packed low bits first along K into B uint8 [N, kBlocks, blockSize * bits / 8].
 * Symmetric: no zero-point input, so onnxruntime uses 2^(bits-1) for every
 * block (8 for int4, 128 for int8) and dequantizes a code q as (q - zp) * scale.
 *
 * The scale is the block's largest-magnitude value, sign included, over
 * -2^(bits-1) (as onnxruntime's own quantizer and llama.cpp's Q4_0 do): that
 * value lands exactly on code 0, and every code in [0, 2^bits) is used, which
 * makes the step an eighth of the block's range at 4 bits instead of a seventh.
 * K that is not a multiple of the block is padded with zeros (code = zp).
 */
import { floatToHalf, halfToFloat } from '../../src/engine/floats.js';
import { UserInputError } from '../../src/errors.js';

export type QuantBits = 4 | 8;

export interface Quantization {
  bits: QuantBits;
  blockSize: number;
}

export const DEFAULT_BLOCK_SIZE = 32;

/** The block sizes onnxruntime 1.30's MatMulNBits kernels accept (others fail when the session loads). */
export const BLOCK_SIZES = [16, 32, 64, 128, 256] as const;

/**
 * `--quantize int4|int8` and `--block-size n` as a Quantization (null: float
 * weights), or one message saying what is wrong. Both bit widths, both pack
 * dtypes and every size here were run through onnxruntime-node 1.30's CPU kernel.
 */
export function parseQuantization(quantize: string | undefined, blockSize: string | number | undefined): Quantization | null {
  if (quantize === undefined) {
    if (blockSize !== undefined) throw new UserInputError('--block-size applies to quantized packs only: add --quantize int4 or --quantize int8', 'config_invalid');
    return null;
  }
  const bits = quantize === 'int4' ? 4 : quantize === 'int8' ? 8 : undefined;
  if (bits === undefined) throw new UserInputError(`--quantize must be int4 or int8, not "${quantize}"`, 'config_invalid');
  const size = blockSize === undefined ? DEFAULT_BLOCK_SIZE : Number(blockSize);
  checkQuantization({ bits, blockSize: size }, String(blockSize));
  return { bits, blockSize: size };
}

/** Refuses what MatMulNBits cannot load, before any weight is read. */
export function checkQuantization(q: Quantization, given: string = String(q.blockSize)): void {
  if (q.bits !== 4 && q.bits !== 8) throw new UserInputError(`quantization bits must be 4 or 8, not ${String(q.bits)}`, 'config_invalid');
  if (!(BLOCK_SIZES as readonly number[]).includes(q.blockSize)) {
    throw new UserInputError(`--block-size must be one of ${BLOCK_SIZES.join(', ')} (what onnxruntime's MatMulNBits accepts), not "${given}"`, 'config_invalid');
  }
}

/**
 * MatMulNBits' accuracy_level per bit width. 4 lets onnxruntime's CPU kernel
 * quantize each block of activations to int8 and multiply in integers; 0
 * multiplies dequantized weights in float. For 8-bit weights level 0 takes a
 * slow generic path in onnxruntime 1.30 (many times slower than a float
 * MatMul on CPU); level 4 is its fast one. GPU kernels ignore the level.
 */
export const ACCURACY_LEVEL: Record<QuantBits, 0 | 4> = { 4: 4, 8: 4 };

/** A weight as MatMulNBits takes it. */
export interface PackedWeight {
  /** Rows (the Linear's out features) and the reduction length (its in features). */
  n: number;
  k: number;
  bits: QuantBits;
  blockSize: number;
  kBlocks: number;
  /** Bytes of codes per block: blockSize * bits / 8. */
  blobSize: number;
  /** [n, kBlocks, blobSize] */
  codes: Uint8Array;
  /** [n, kBlocks], each exactly representable in the pack dtype (the codes were chosen with it). */
  scales: Float32Array;
}

/** The scale as it will be stored: float16 packs store float16 scales (MatMulNBits' scales have A's type). */
export type ScaleType = 'float32' | 'float16';

function storedScale(value: number, type: ScaleType): number {
  return type === 'float32' ? Math.fround(value) : halfToFloat(floatToHalf(value));
}

/**
 * Quantizes `data` [n, k] (row-major, torch's [out, in]) block by block along k.
 * Codes are chosen against the scale as stored, so dequantizing with the
 * stored scale is what the error bound below is about.
 */
export function quantizeBlockwise(data: Float32Array, n: number, k: number, q: Quantization, scaleType: ScaleType = 'float32'): PackedWeight {
  if (data.length !== n * k) throw new Error(`quantize: ${data.length} values for [${n}, ${k}]`);
  const { bits, blockSize } = q;
  const kBlocks = Math.ceil(k / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const zero = 1 << (bits - 1);
  const maxCode = (1 << bits) - 1;
  const codes = new Uint8Array(n * kBlocks * blobSize);
  const scales = new Float32Array(n * kBlocks);
  const block = new Uint8Array(blockSize);
  for (let row = 0; row < n; row++) {
    const rowBase = row * k;
    for (let b = 0; b < kBlocks; b++) {
      const start = b * blockSize;
      const end = Math.min(k, start + blockSize);
      let extreme = 0;
      for (let i = start; i < end; i++) {
        const v = data[rowBase + i]!;
        if (Math.abs(v) > Math.abs(extreme)) extreme = v;
      }
      const scale = extreme === 0 ? 0 : storedScale(extreme / -zero, scaleType);
      scales[row * kBlocks + b] = scale;
      const inverse = scale === 0 ? 0 : 1 / scale;
      block.fill(zero);
      for (let i = start; i < end; i++) {
        const code = Math.round(data[rowBase + i]! * inverse) + zero;
        block[i - start] = code < 0 ? 0 : code > maxCode ? maxCode : code;
      }
      packBlock(block, bits, codes, (row * kBlocks + b) * blobSize);
    }
  }
  return { n, k, bits, blockSize, kBlocks, blobSize, codes, scales };
}

/** Codes (one per byte) -> `bits`-wide fields, low bits first. */
function packBlock(block: Uint8Array, bits: QuantBits, out: Uint8Array, offset: number): void {
  if (bits === 8) {
    out.set(block, offset);
    return;
  }
  for (let i = 0; i < block.length; i += 2) out[offset + i / 2] = block[i]! | (block[i + 1]! << 4);
}

/** The code of element `i` of block `b` in row `row`. */
export function codeAt(w: PackedWeight, row: number, b: number, i: number): number {
  const offset = (row * w.kBlocks + b) * w.blobSize;
  if (w.bits === 8) return w.codes[offset + i]!;
  const byte = w.codes[offset + (i >> 1)]!;
  return i & 1 ? byte >> 4 : byte & 0x0f;
}

/** What MatMulNBits multiplies by: (code - 2^(bits-1)) * scale, as [n, k] (padding dropped). */
export function dequantize(w: PackedWeight): Float32Array {
  const out = new Float32Array(w.n * w.k);
  const zero = 1 << (w.bits - 1);
  for (let row = 0; row < w.n; row++) {
    for (let col = 0; col < w.k; col++) {
      const b = Math.floor(col / w.blockSize);
      out[row * w.k + col] = (codeAt(w, row, b, col - b * w.blockSize) - zero) * w.scales[row * w.kBlocks + b]!;
    }
  }
  return out;
}

/** Bytes a quantized [n, k] weight takes in a pack (codes + scales in the pack dtype). */
export function packedBytes(n: number, k: number, q: Quantization, scaleBytes: number): number {
  const kBlocks = Math.ceil(k / q.blockSize);
  return n * kBlocks * ((q.blockSize * q.bits) / 8 + scaleBytes);
}
