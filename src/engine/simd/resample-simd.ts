/**
 * resizeRgb()'s WebAssembly path: lays the source rows, the coefficients and
 * the passes' rows out in this thread's kernel memory and runs both kernels.
 */
import type { DecodedImage } from '../types.js';
import { type ResampleKernels, instantiateResampleKernels } from './resample-kernels.js';

/** Pillow's filter taps for one axis (made by resample.ts), as both passes read them. */
export interface Taps {
  /** Per output position: the first of its `taps` consecutive input indices. */
  first: Int32Array;
  /** `taps` fixed-point coefficients per output position. */
  coeffs: Int32Array;
  /**
   * Every output reads exactly this many inputs: Pillow's window padded with
   * zero weights (and shifted to stay inside the input at the far edge), so the
   * hot loops have a fixed trip count and the common counts can be unrolled.
   */
  taps: number;
}

/** This thread's kernels (each thread has its own instance and memory), null without WebAssembly SIMD. */
let kernels: ResampleKernels | null | undefined;
function threadKernels(): ResampleKernels | null {
  if (kernels === undefined) kernels = instantiateResampleKernels();
  return kernels;
}

/**
 * WebAssembly memory never shrinks: after a resize that needed more than this,
 * the instance is let go (the next call makes a new one), so one huge photo
 * does not pin its memory in the thread for good. Like scratch.ts's limit.
 */
const KEEP_KERNEL_BYTES = 64 * 2 ** 20;

/** Source bytes copied into kernel memory at a time for the horizontal pass. */
const SOURCE_CHUNK_BYTES = 2 ** 20;

/**
 * Both passes in the WebAssembly kernels. The source rows they read are copied
 * in a chunk at a time (the kernels see only their own memory), so that memory
 * stays small: after the first image of a size it writes no fresh pages.
 */
export function resizeWithKernels(
  image: DecodedImage,
  area: { rowFirst: number; rows: number; left: number; width: number; height: number },
  horizontal: Taps | undefined,
  vertical: Taps | undefined,
  out: Uint8Array,
): boolean {
  const k = threadKernels();
  if (!k) return false;
  const { rowFirst, rows, left, width: cw, height: ch } = area;
  const inRow = image.width * 3;
  const rowLen = cw * 3;
  // Every region is followed by padding the kernels may read or write into.
  const PAD = 16;
  const align = (n: number) => Math.ceil(n / 16) * 16;
  const chunkRows = Math.max(1, Math.min(rows, Math.floor(SOURCE_CHUNK_BYTES / inRow)));
  const srcPtr = 0;
  const midPtr = srcPtr + (horizontal ? align(chunkRows * inRow + PAD) : 0);
  const outPtr = midPtr + align(rows * rowLen + PAD);
  const hFirstPtr = outPtr + (vertical ? align(ch * rowLen + PAD) : 0);
  const hCoefPtr = hFirstPtr + (horizontal ? align(cw * 4) : 0);
  const vFirstPtr = hCoefPtr + (horizontal ? align(horizontal.coeffs.length * 4) : 0);
  const vCoefPtr = vFirstPtr + (vertical ? align(ch * 4) : 0);
  const end = vCoefPtr + (vertical ? vertical.coeffs.length * 4 : 0);
  const pages = Math.ceil(end / 65536) - k.memory.buffer.byteLength / 65536;
  if (pages > 0) k.memory.grow(pages);
  const memory = k.memory.buffer;
  const bytes = new Uint8Array(memory);

  if (horizontal) {
    const first = new Int32Array(memory, hFirstPtr, cw);
    for (let x = 0; x < cw; x++) first[x] = horizontal.first[x]! * 3;
    new Int32Array(memory, hCoefPtr, horizontal.coeffs.length).set(horizontal.coeffs);
    for (let r = 0; r < rows; r += chunkRows) {
      const n = Math.min(chunkRows, rows - r);
      bytes.set(image.data.subarray((rowFirst + r) * inRow, (rowFirst + r + n) * inRow), srcPtr);
      k.hpass(srcPtr, inRow, n, midPtr + r * rowLen, rowLen, cw, hFirstPtr, hCoefPtr, horizontal.taps);
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const start = ((rowFirst + r) * image.width + left) * 3;
      bytes.set(image.data.subarray(start, start + rowLen), midPtr + r * rowLen);
    }
  }
  if (vertical) {
    const first = new Int32Array(memory, vFirstPtr, ch);
    for (let y = 0; y < ch; y++) first[y] = (vertical.first[y]! - rowFirst) * rowLen;
    new Int32Array(memory, vCoefPtr, vertical.coeffs.length).set(vertical.coeffs);
    k.vpass(midPtr, rowLen, outPtr, ch, vFirstPtr, vCoefPtr, vertical.taps);
  }
  const resultPtr = vertical ? outPtr : midPtr;
  out.set(bytes.subarray(resultPtr, resultPtr + ch * rowLen));
  if (memory.byteLength > KEEP_KERNEL_BYTES) kernels = undefined;
  return true;
}
