/**
 * Low-resolution mask logits -> binary masks at the original image size, as
 * SAM's postprocess_masks does: bilinear (align_corners=False) to the SAM frame,
 * crop to the resized image, bilinear to the original size, logits > 0.
 *
 * Both resizes are separable and linear, so each output row (column) is a fixed
 * mix of at most three low-res rows (columns). Those composite weights are
 * precomputed once per axis, and the SAM-sized frame is never materialised: no
 * work is spent on rows or columns the crop and the second resize never read.
 *
 * The result is what the rest of lisa-bot keeps and sends: COCO RLE, area and
 * box. The full-size mask (2 MB for a 1080p photo) only lives in reused memory
 * here; decodeRle() gives it to whoever needs the pixels.
 */
import { scratchArrayBuffer } from '../workers/scratch.js';
import { type MaskSummary, summariseMask } from './mask.js';

interface AxisTaps {
  /** Per output index: up to MAX_TAPS (low-res index, weight) pairs, `count` of them used. */
  index: Int32Array;
  weight: Float64Array;
  count: Uint8Array;
}

const MAX_TAPS = 4;

/**
 * PyTorch F.interpolate(mode='bilinear', align_corners=False) source index for
 * one output position: half-pixel centres, negative coordinates clamped to 0,
 * the upper neighbour clamped to the last index.
 */
function sourceTaps(dst: number, inSize: number, outSize: number): [number, number, number, number] {
  let src = (dst + 0.5) * (inSize / outSize) - 0.5;
  if (src < 0) src = 0;
  const i0 = Math.trunc(src);
  const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
  const l1 = src - i0;
  return [i0, 1 - l1, i1, l1];
}

/** Composite weights of low (L) -> sam (S) -> crop [0, cropSize) -> out, along one axis. */
function axisTaps(lowSize: number, samSize: number, cropSize: number, outSize: number): AxisTaps {
  const index = new Int32Array(outSize * MAX_TAPS);
  const weight = new Float64Array(outSize * MAX_TAPS);
  const count = new Uint8Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const [s0, ws0, s1, ws1] = sourceTaps(o, cropSize, outSize);
    const base = o * MAX_TAPS;
    let n = 0;
    for (const [s, ws] of [[s0, ws0], [s1, ws1]] as const) {
      const [l0, wl0, l1, wl1] = sourceTaps(s, lowSize, samSize);
      for (const [l, wl] of [[l0, ws * wl0], [l1, ws * wl1]] as const) {
        if (wl === 0) continue;
        // Merge repeated indices so the hot loop does at most 3 taps (4 only when lowSize > samSize).
        let k = 0;
        while (k < n && index[base + k] !== l) k++;
        if (k === n) {
          index[base + n] = l;
          weight[base + n] = 0;
          n++;
        }
        weight[base + k] += wl;
      }
    }
    count[o] = n;
  }
  return { index, weight, count };
}

/**
 * Turns `count` low-res logit maps (`lowRes` holds count x lowSize x lowSize
 * floats) into masks at `original` size, as RLE with area and box. `resized`
 * is the image's size inside the samSize x samSize frame (top-left aligned).
 */
export function maskSummariesFromLowRes(
  lowRes: Float32Array,
  count: number,
  lowSize: number,
  samSize: number,
  resized: { height: number; width: number },
  original: { height: number; width: number },
): MaskSummary[] {
  const { width: W, height: H } = original;
  if (lowRes.length < count * lowSize * lowSize) {
    throw new Error(`low_res_masks has ${lowRes.length} values, expected ${count} x ${lowSize} x ${lowSize}`);
  }
  if (!(resized.width > 0 && resized.height > 0 && resized.width <= samSize && resized.height <= samSize)) {
    throw new Error(`Resized size ${resized.width}x${resized.height} does not fit the ${samSize} frame`);
  }
  if (!(W > 0 && H > 0)) throw new Error(`Original size ${W}x${H} is empty`);
  const cols = axisTaps(lowSize, samSize, resized.width, W);
  const rows = axisTaps(lowSize, samSize, resized.height, H);

  // Low-res rows that any output row reads: only those get the horizontal pass,
  // each into a slot of its own; output rows then read slots, not low-res rows.
  const slotOf = new Int32Array(lowSize).fill(-1);
  const usedRows: number[] = [];
  for (let y = 0; y < H; y++) {
    for (let t = 0; t < rows.count[y]!; t++) {
      const b = y * MAX_TAPS + t;
      const r = rows.index[b]!;
      if (slotOf[r] === -1) {
        slotOf[r] = usedRows.length;
        usedRows.push(r);
      }
      rows.index[b] = slotOf[r]!;
    }
  }

  const slots = usedRows.length;
  const rowsMemory = horizontalScratch.take(slots * W * 8);
  const maskMemory = maskScratch.take(W * H);
  try {
    const horizontal = new Float64Array(rowsMemory, 0, slots * W);
    const mask = { width: W, height: H, data: new Uint8Array(maskMemory, 0, W * H) };
    const summaries: MaskSummary[] = [];
    for (let m = 0; m < count; m++) {
      const plane = lowRes.subarray(m * lowSize * lowSize, (m + 1) * lowSize * lowSize);
      horizontalPass(plane, lowSize, usedRows, cols, W, horizontal);
      verticalThreshold(horizontal, rows, W, H, mask.data);
      summaries.push(summariseMask(mask));
    }
    return summaries;
  } finally {
    horizontalScratch.give(rowsMemory);
    maskScratch.give(maskMemory);
  }
}

/**
 * The horizontal pass's rows (float64, ~2 MiB for a 1920-wide image) and the
 * thresholded mask (2 MB), reused from turn to turn: see scratch.ts.
 */
const horizontalScratch = scratchArrayBuffer();
const maskScratch = scratchArrayBuffer();

/** Row `usedRows[slot]` of the low-res plane, resized horizontally, into row `slot` of `out`. */
function horizontalPass(plane: Float32Array, lowSize: number, usedRows: readonly number[], cols: AxisTaps, W: number, out: Float64Array): void {
  const { index, weight, count } = cols;
  for (let slot = 0; slot < usedRows.length; slot++) {
    const src = usedRows[slot]! * lowSize;
    const dst = slot * W;
    for (let x = 0, b = 0; x < W; x++, b += MAX_TAPS) {
      const n = count[x]!;
      let v = weight[b]! * plane[src + index[b]!]!;
      for (let t = 1; t < n; t++) v += weight[b + t]! * plane[src + index[b + t]!]!;
      out[dst + x] = v;
    }
  }
}

/** The vertical resize and the > 0 threshold, row by row (rows' taps name slots of `horizontal`). */
function verticalThreshold(horizontal: Float64Array, rows: AxisTaps, W: number, H: number, data: Uint8Array): void {
  const { index, weight, count } = rows;
  for (let y = 0, b = 0; y < H; y++, b += MAX_TAPS) {
    const n = count[y]!;
    const o = y * W;
    const r0 = index[b]! * W;
    const w0 = weight[b]!;
    if (n === 1) {
      for (let x = 0; x < W; x++) data[o + x] = w0 * horizontal[r0 + x]! > 0 ? 1 : 0;
      continue;
    }
    const r1 = index[b + 1]! * W;
    const w1 = weight[b + 1]!;
    if (n === 2) {
      for (let x = 0; x < W; x++) data[o + x] = w0 * horizontal[r0 + x]! + w1 * horizontal[r1 + x]! > 0 ? 1 : 0;
      continue;
    }
    const r2 = index[b + 2]! * W;
    const w2 = weight[b + 2]!;
    if (n === 3) {
      for (let x = 0; x < W; x++) {
        data[o + x] = w0 * horizontal[r0 + x]! + w1 * horizontal[r1 + x]! + w2 * horizontal[r2 + x]! > 0 ? 1 : 0;
      }
      continue;
    }
    const r3 = index[b + 3]! * W;
    const w3 = weight[b + 3]!;
    for (let x = 0; x < W; x++) {
      const v = w0 * horizontal[r0 + x]! + w1 * horizontal[r1 + x]! + w2 * horizontal[r2 + x]! + w3 * horizontal[r3 + x]!;
      data[o + x] = v > 0 ? 1 : 0;
    }
  }
}
