/**
 * Pillow's `Image.resize` for 8-bit RGB, reproduced bit for bit (ImagingResample:
 * antialiased separable convolution, 22-bit fixed-point coefficients, horizontal
 * pass first with the intermediate rounded to 8 bits, then vertical).
 *
 * Why not sharp: the LISA reference resizes with Pillow (CLIP's bicubic via
 * Hugging Face's CLIPImageProcessor, SAM's bilinear via torchvision on a PIL
 * image). libvips disagrees with it: upscaling (any image smaller than 1024 on
 * its long side, so most SAM inputs) is misaligned by a fraction of a pixel
 * (mean error ~9 levels, up to 150 at edges), and large reductions pre-shrink with
 * a box filter (CLIP on 1920x1080: up to 10 levels). This matches exactly.
 *
 * Both passes run as WebAssembly SIMD kernels (simd/) where the runtime has
 * them: same integer arithmetic, same bytes, ~3x faster than the JavaScript
 * passes below, which remain the fallback and the tests' reference.
 */
import type { ScratchBuffer } from '../memory/scratch.js';
import { type Taps, resizeWithKernels } from './simd/resample-simd.js';
import type { DecodedImage } from './types.js';

export type ResampleFilter = 'bicubic' | 'bilinear';

/** Part of the resized image to produce: Pillow computes every output pixel independently, so a crop of it is exact. */
export interface ResampleWindow {
  left: number;
  top: number;
  width: number;
  height: number;
}

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 1 << (PRECISION_BITS - 1);
const SATURATE = 1 << (PRECISION_BITS + 8);

const FILTERS: Record<ResampleFilter, { support: number; weight: (x: number) => number }> = {
  bicubic: {
    support: 2,
    weight: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    weight: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
};

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc, for outputs [from, from + length). */
function taps(inSize: number, outSize: number, filter: ResampleFilter, from: number, length: number): Taps {
  const { support: baseSupport, weight } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = baseSupport * filterScale;
  const invScale = 1 / filterScale; // Pillow multiplies by the reciprocal; dividing can differ in the last bit
  const window = Math.ceil(support) * 2 + 1;
  const n = Math.min(window, inSize);
  const first = new Int32Array(length);
  const coeffs = new Int32Array(length * n);
  const k = new Float64Array(window);
  for (let i = 0; i < length; i++) {
    const center = (from + i + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const used = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < used; x++) {
      k[x] = weight((x + xmin - center + 0.5) * invScale);
      sum += k[x]!;
    }
    const start = Math.min(xmin, inSize - n);
    const base = i * n + (xmin - start);
    for (let x = 0; x < used; x++) {
      const v = sum !== 0 ? k[x]! / sum : k[x]!;
      coeffs[base + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    first[i] = start;
  }
  return { first, coeffs, taps: n };
}

/**
 * Resizes interleaved RGB to `outWidth` x `outHeight` as Pillow does, returning
 * only `window` of the result (default: all of it), as interleaved RGB: in
 * `into` when given (at least window width x height x 3 bytes; the result is
 * a view of it), else in a new array.
 */
export function resizeRgb(...args: ResizeArgs): Uint8Array {
  return resize(true, ...args);
}

/** resizeRgb() in plain JavaScript: where WebAssembly SIMD is missing, and as the tests' reference. */
export function resizeRgbScalar(...args: ResizeArgs): Uint8Array {
  return resize(false, ...args);
}

type ResizeArgs = [
  image: DecodedImage,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter,
  window?: ResampleWindow,
  into?: Uint8Array,
  /** Memory for the horizontal pass's rows, kept by the caller between calls (fresh pages are slow: see scratch.ts); fresh memory without it. */
  work?: ScratchBuffer<ArrayBuffer>,
];

function resize(
  simd: boolean,
  image: DecodedImage,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter,
  window: ResampleWindow = { left: 0, top: 0, width: outWidth, height: outHeight },
  into?: Uint8Array,
  work?: ScratchBuffer<ArrayBuffer>,
): Uint8Array {
  const { width: inWidth, height: inHeight } = image;
  const src = image.data;
  const { left, top, width: cw, height: ch } = window;
  if (!(cw > 0 && ch > 0 && left >= 0 && top >= 0 && left + cw <= outWidth && top + ch <= outHeight)) {
    throw new Error(`Resample window ${left},${top} ${cw}x${ch} is outside ${outWidth}x${outHeight}`);
  }
  if (src.length !== inWidth * inHeight * 3) throw new Error(`Image data is ${src.length} bytes, expected ${inWidth}x${inHeight}x3`);

  // Rows of the source that the vertical pass reads; identity axes are plain copies (as Pillow skips them).
  const vertical = outHeight !== inHeight ? taps(inHeight, outHeight, filter, top, ch) : undefined;
  const rowFirst = vertical ? vertical.first[0]! : top;
  const rowEnd = vertical ? vertical.first[ch - 1]! + vertical.taps : top + ch;
  const rows = rowEnd - rowFirst;
  const rowLen = cw * 3;
  if (into && into.length < ch * rowLen) throw new Error(`resizeRgb: ${into.length} bytes cannot hold ${cw}x${ch} RGB`);
  const out = into ? into.subarray(0, ch * rowLen) : new Uint8Array(ch * rowLen);
  const horizontal = outWidth !== inWidth ? taps(inWidth, outWidth, filter, left, cw) : undefined;
  if (simd && resizeWithKernels(image, { rowFirst, rows, left, width: cw, height: ch }, horizontal, vertical, out)) return out;

  // The horizontal pass's rows: straight into `out` when there is no vertical pass, else into `work`'s memory.
  const midMemory = vertical ? (work?.take(rows * rowLen) ?? new ArrayBuffer(rows * rowLen)) : undefined;
  try {
    const mid = midMemory ? new Uint8Array(midMemory, 0, rows * rowLen) : out;
    if (horizontal) {
      horizontalPass(src, inWidth, rowFirst, rows, mid, cw, horizontal);
    } else {
      for (let r = 0; r < rows; r++) {
        const start = ((rowFirst + r) * inWidth + left) * 3;
        mid.set(src.subarray(start, start + rowLen), r * rowLen);
      }
    }
    if (vertical) verticalPass(mid, rowFirst, rowLen, out, ch, vertical);
    return out;
  } finally {
    if (midMemory) work?.give(midMemory);
  }
}

const clip8 = (s: number) => (s >= SATURATE ? 255 : s <= 0 ? 0 : s >> PRECISION_BITS);

function horizontalPass(src: Uint8Array, inWidth: number, rowFirst: number, rows: number, mid: Uint8Array, cw: number, t: Taps): void {
  const { first, coeffs, taps: n } = t;
  const inRow = inWidth * 3;
  const outRow = cw * 3;
  // Column-outer keeps one output's coefficients in registers across all rows;
  // 3 and 5 taps (upscaling, bilinear reduction up to 2x) are unrolled.
  for (let x = 0; x < cw; x++) {
    const kb = x * n;
    const c0 = coeffs[kb]!;
    const c1 = n > 1 ? coeffs[kb + 1]! : 0;
    const c2 = n > 2 ? coeffs[kb + 2]! : 0;
    let p = rowFirst * inRow + first[x]! * 3;
    let o = x * 3;
    if (n === 3) {
      for (let r = 0; r < rows; r++, o += outRow, p += inRow) {
        mid[o] = clip8(HALF + src[p]! * c0 + src[p + 3]! * c1 + src[p + 6]! * c2);
        mid[o + 1] = clip8(HALF + src[p + 1]! * c0 + src[p + 4]! * c1 + src[p + 7]! * c2);
        mid[o + 2] = clip8(HALF + src[p + 2]! * c0 + src[p + 5]! * c1 + src[p + 8]! * c2);
      }
    } else if (n === 5) {
      const c3 = coeffs[kb + 3]!;
      const c4 = coeffs[kb + 4]!;
      for (let r = 0; r < rows; r++, o += outRow, p += inRow) {
        mid[o] = clip8(HALF + src[p]! * c0 + src[p + 3]! * c1 + src[p + 6]! * c2 + src[p + 9]! * c3 + src[p + 12]! * c4);
        mid[o + 1] = clip8(HALF + src[p + 1]! * c0 + src[p + 4]! * c1 + src[p + 7]! * c2 + src[p + 10]! * c3 + src[p + 13]! * c4);
        mid[o + 2] = clip8(HALF + src[p + 2]! * c0 + src[p + 5]! * c1 + src[p + 8]! * c2 + src[p + 11]! * c3 + src[p + 14]! * c4);
      }
    } else {
      for (let r = 0; r < rows; r++, o += outRow, p += inRow) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let j = 0, q = p; j < n; j++, q += 3) {
          const c = coeffs[kb + j]!;
          s0 += src[q]! * c;
          s1 += src[q + 1]! * c;
          s2 += src[q + 2]! * c;
        }
        mid[o] = clip8(s0);
        mid[o + 1] = clip8(s1);
        mid[o + 2] = clip8(s2);
      }
    }
  }
}

function verticalPass(mid: Uint8Array, rowFirst: number, rowLen: number, out: Uint8Array, ch: number, t: Taps): void {
  const { first, coeffs, taps: n } = t;
  const acc = new Float64Array(n === 3 || n === 5 ? 0 : rowLen);
  for (let y = 0; y < ch; y++) {
    const kb = y * n;
    const b0 = (first[y]! - rowFirst) * rowLen;
    const o = y * rowLen;
    const c0 = coeffs[kb]!;
    if (n === 3 || n === 5) {
      const c1 = coeffs[kb + 1]!;
      const c2 = coeffs[kb + 2]!;
      const b1 = b0 + rowLen;
      const b2 = b1 + rowLen;
      if (n === 3) {
        for (let i = 0; i < rowLen; i++) out[o + i] = clip8(HALF + mid[b0 + i]! * c0 + mid[b1 + i]! * c1 + mid[b2 + i]! * c2);
        continue;
      }
      const c3 = coeffs[kb + 3]!;
      const c4 = coeffs[kb + 4]!;
      const b3 = b2 + rowLen;
      const b4 = b3 + rowLen;
      for (let i = 0; i < rowLen; i++) {
        out[o + i] = clip8(HALF + mid[b0 + i]! * c0 + mid[b1 + i]! * c1 + mid[b2 + i]! * c2 + mid[b3 + i]! * c3 + mid[b4 + i]! * c4);
      }
      continue;
    }
    // Wide windows: accumulate row by row, streaming whole rows (integer sums are exact in any order).
    for (let i = 0; i < rowLen; i++) acc[i] = HALF + mid[b0 + i]! * c0;
    for (let j = 1; j < n; j++) {
      const c = coeffs[kb + j]!;
      const p = b0 + j * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += mid[p + i]! * c;
    }
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]!);
  }
}
