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
 * box, emitted run by run. The full-size mask (2 MB for a 1080p photo) is never
 * written; decodeRle() gives it to whoever needs the pixels.
 */
import { ColumnRuns, type MaskSummary } from './mask.js';

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
 * Runs of consecutive output indices whose taps fall in the same span of
 * low-res indices [low, high]: each run is decided by the same low-res logits.
 */
interface TapRanges {
  /** First output index of each run, plus a final entry equal to the output size. */
  start: Int32Array;
  low: Int32Array;
  high: Int32Array;
  length: number;
}

function tapLow(taps: AxisTaps, o: number): number {
  let low = Infinity;
  for (let t = 0; t < taps.count[o]!; t++) low = Math.min(low, taps.index[o * MAX_TAPS + t]!);
  return low;
}

function tapHigh(taps: AxisTaps, o: number): number {
  let high = -1;
  for (let t = 0; t < taps.count[o]!; t++) high = Math.max(high, taps.index[o * MAX_TAPS + t]!);
  return high;
}

function tapRanges(taps: AxisTaps, outSize: number): TapRanges {
  const start = new Int32Array(outSize + 1);
  const low = new Int32Array(outSize);
  const high = new Int32Array(outSize);
  let length = 0;
  for (let o = 0; o < outSize; o++) {
    const lo = tapLow(taps, o);
    const hi = tapHigh(taps, o);
    if (length > 0 && low[length - 1] === lo && high[length - 1] === hi) continue;
    start[length] = o;
    low[length] = lo;
    high[length] = hi;
    length++;
  }
  start[length] = outSize;
  return { start, low, high, length };
}

const ZEROS = 0;
const ONES = 1;
const MIXED = 2;

/**
 * Turns `count` low-res logit maps (`lowRes` holds count x lowSize x lowSize
 * floats) into masks at `original` size, as RLE with area and box. `resized`
 * is the image's size inside the samSize x samSize frame (top-left aligned).
 *
 * Every output pixel is a mix, with positive weights, of at most 4 x 4 low-res
 * logits. Where those logits all have one sign, so has the pixel: whole blocks
 * of a mask are decided from the low-res signs alone, and only the pixels near
 * its edge are computed, exactly as the separable float64 resize would.
 * The runs are emitted column-major as they are found, so the full-size mask
 * is never written.
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
  const layout = { cols, rows, colRanges: tapRanges(cols, W), rowRanges: tapRanges(rows, H), W, H, lowSize };
  const summaries: MaskSummary[] = [];
  for (let m = 0; m < count; m++) {
    summaries.push(summarisePlane(lowRes.subarray(m * lowSize * lowSize, (m + 1) * lowSize * lowSize), layout));
  }
  return summaries;
}

interface Layout {
  cols: AxisTaps;
  rows: AxisTaps;
  colRanges: TapRanges;
  rowRanges: TapRanges;
  W: number;
  H: number;
  lowSize: number;
}

function summarisePlane(plane: Float32Array, layout: Layout): MaskSummary {
  const { cols, rows, colRanges, rowRanges, W, H, lowSize } = layout;
  const L = lowSize;
  // positives[(r + 1) * (L + 1) + c + 1]: how many logits > 0 in rows <= r, columns <= c.
  const positives = new Int32Array((L + 1) * (L + 1));
  for (let r = 0; r < L; r++) {
    let rowCount = 0;
    for (let c = 0; c < L; c++) {
      rowCount += plane[r * L + c]! > 0 ? 1 : 0;
      positives[(r + 1) * (L + 1) + c + 1] = positives[r * (L + 1) + c + 1]! + rowCount;
    }
  }
  // The current column run's spans of output rows: class and [from, to).
  const spanClass = new Uint8Array(rowRanges.length);
  const spanFrom = new Int32Array(rowRanges.length);
  const spanTo = new Int32Array(rowRanges.length);
  // The horizontal pass of the current column at low-res row r, once computed.
  const horizontal = new Float64Array(L);
  const horizontalAt = new Int32Array(L).fill(-1);

  const runs = new ColumnRuns(W, H);

  for (let g = 0; g < colRanges.length; g++) {
    const c0 = colRanges.low[g]!;
    const c1 = colRanges.high[g]! + 1;
    let spans = 0;
    for (let rg = 0; rg < rowRanges.length; rg++) {
      const r0 = rowRanges.low[rg]!;
      const r1 = rowRanges.high[rg]! + 1;
      const inBlock =
        positives[r1 * (L + 1) + c1]! - positives[r0 * (L + 1) + c1]! - positives[r1 * (L + 1) + c0]! + positives[r0 * (L + 1) + c0]!;
      const kind = inBlock === 0 ? ZEROS : inBlock === (r1 - r0) * (c1 - c0) ? ONES : MIXED;
      const y0 = rowRanges.start[rg]!;
      const y1 = rowRanges.start[rg + 1]!;
      if (spans > 0 && spanClass[spans - 1] === kind) {
        spanTo[spans - 1] = y1;
      } else {
        spanClass[spans] = kind;
        spanFrom[spans] = y0;
        spanTo[spans] = y1;
        spans++;
      }
    }

    for (let x = colRanges.start[g]!; x < colRanges.start[g + 1]!; x++) {
      const xb = x * MAX_TAPS;
      const nc = cols.count[x]!;
      for (let sp = 0; sp < spans; sp++) {
        const kind = spanClass[sp]!;
        const y0 = spanFrom[sp]!;
        const y1 = spanTo[sp]!;
        if (kind !== MIXED) {
          runs.add(kind, y0, y1 - y0);
          continue;
        }
        // The horizontal pass of this column at every low-res row the span reads,
        // in the same order of operations as a full separable resize: the same float64.
        for (let r = tapLow(rows, y0), rEnd = tapHigh(rows, y1 - 1); r <= rEnd; r++) {
          if (horizontalAt[r] === x) continue;
          const src = r * L;
          let h = cols.weight[xb]! * plane[src + cols.index[xb]!]!;
          for (let t = 1; t < nc; t++) h += cols.weight[xb + t]! * plane[src + cols.index[xb + t]!]!;
          horizontal[r] = h;
          horizontalAt[r] = x;
        }
        for (let y = y0, yb = y0 * MAX_TAPS; y < y1; y++, yb += MAX_TAPS) {
          const nr = rows.count[y]!;
          let v = rows.weight[yb]! * horizontal[rows.index[yb]!]!;
          if (nr > 1) v += rows.weight[yb + 1]! * horizontal[rows.index[yb + 1]!]!;
          if (nr > 2) v += rows.weight[yb + 2]! * horizontal[rows.index[yb + 2]!]!;
          if (nr > 3) v += rows.weight[yb + 3]! * horizontal[rows.index[yb + 3]!]!;
          runs.add(v > 0 ? 1 : 0, y, 1);
        }
      }
      runs.endColumn(x);
    }
  }
  return runs.summary();
}
