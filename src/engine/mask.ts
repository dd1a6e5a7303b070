/**
 * Binary mask utilities: statistics, union, and COCO run-length encoding that
 * interoperates with pycocotools (`mask.encode` / `mask.decode` and its
 * compressed `counts` strings), so results can be scored with COCO tools.
 */
import type { BinaryMask, BoundingBox, RleMask, Segment } from './types.js';

/** Pixel count and tight [x, y, width, height] box ([0, 0, 0, 0] when empty). */
export function maskStats(mask: BinaryMask): { area: number; bbox: BoundingBox } {
  const { width: w, height: h, data } = mask;
  let area = 0;
  let minX = w;
  let maxX = -1;
  let minY = h;
  let maxY = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let rowFirst = -1;
    let rowLast = -1;
    for (let x = 0; x < w; x++) {
      if (data[row + x] !== 0) {
        if (rowFirst < 0) rowFirst = x;
        rowLast = x;
        area++;
      }
    }
    if (rowFirst < 0) continue;
    if (minY > y) minY = y;
    maxY = y;
    if (rowFirst < minX) minX = rowFirst;
    if (rowLast > maxX) maxX = rowLast;
  }
  if (area === 0) return { area: 0, bbox: [0, 0, 0, 0] };
  return { area, bbox: [minX, minY, maxX - minX + 1, maxY - minY + 1] };
}

/** Pixel-wise OR of masks of one size; with no masks, an empty mask of `width` x `height`. */
export function maskUnion(masks: readonly BinaryMask[], width?: number, height?: number): BinaryMask {
  const w = width ?? masks[0]?.width;
  const h = height ?? masks[0]?.height;
  if (w === undefined || h === undefined) throw new Error('maskUnion of no masks needs a width and height');
  const data = new Uint8Array(w * h);
  for (const mask of masks) {
    if (mask.width !== w || mask.height !== h) {
      throw new Error(`maskUnion: a ${mask.width}x${mask.height} mask does not match ${w}x${h}`);
    }
    const src = mask.data;
    for (let i = 0; i < data.length; i++) if (src[i] !== 0) data[i] = 1;
  }
  return { width: w, height: h, data };
}

/** Run lengths in column-major (Fortran) order, starting with a run of zeros (pycocotools rleEncode). */
export function maskRunLengths(mask: BinaryMask): number[] {
  return columnScan(mask).runLengths();
}

/**
 * Collects a mask's column-major runs, area and box, fed column by column, top
 * to bottom, a pixel or a stretch of equal pixels at a time: from the pixels
 * (columnScan) or straight from the mask postprocess, which never writes them.
 */
export class ColumnRuns {
  private readonly counts: number[] = [];
  private current = 0;
  private run = 0;
  private area = 0;
  private minX: number;
  private maxX = -1;
  private minY: number;
  private maxY = -1;
  private first = -1;
  private last = -1;

  constructor(
    private readonly width: number,
    private readonly height: number,
  ) {
    this.minX = width;
    this.minY = height;
  }

  /** `length` pixels of value `bit`, from row `y` down the current column. */
  add(bit: number, y: number, length: number): void {
    if (bit !== this.current) {
      this.counts.push(this.run);
      this.run = 0;
      this.current = bit;
    }
    this.run += length;
    if (bit === 0) return;
    this.area += length;
    if (this.first < 0) this.first = y;
    this.last = y + length - 1;
  }

  /** Closes column `x`. */
  endColumn(x: number): void {
    if (this.first < 0) return;
    if (this.minX > x) this.minX = x;
    this.maxX = x;
    if (this.first < this.minY) this.minY = this.first;
    if (this.last > this.maxY) this.maxY = this.last;
    this.first = -1;
    this.last = -1;
  }

  /** The run lengths so far, the last one included (call once every column is closed). */
  runLengths(): number[] {
    return [...this.counts, this.run];
  }

  summary(): MaskSummary {
    const bbox: BoundingBox = this.area === 0 ? [0, 0, 0, 0] : [this.minX, this.minY, this.maxX - this.minX + 1, this.maxY - this.minY + 1];
    return { rle: { size: [this.height, this.width], counts: countsToString(this.runLengths()) }, area: this.area, bbox };
  }
}

function columnScan(mask: BinaryMask): ColumnRuns {
  const { width: w, height: h, data } = mask;
  const runs = new ColumnRuns(w, h);
  for (let x = 0; x < w; x++) {
    for (let y = 0, i = x; y < h; y++, i += w) runs.add(data[i] !== 0 ? 1 : 0, y, 1);
    runs.endColumn(x);
  }
  return runs;
}

/**
 * pycocotools rleToString: LEB128-like, 5 bits per char (plus a continuation
 * bit) offset by 48, each count from the third on stored as the difference to
 * the count two before it.
 */
export function countsToString(counts: readonly number[]): string {
  let out = '';
  for (let i = 0; i < counts.length; i++) {
    // pycocotools tests i > 2, not i >= 2: the first three counts are stored as they are.
    let x = counts[i]! - (i > 2 ? counts[i - 2]! : 0);
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x = Math.floor(x / 32); // arithmetic shift, safe past 32 bits
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  }
  return out;
}

/** pycocotools rleFrString: the inverse of countsToString. */
export function countsFromString(s: string): number[] {
  const counts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error('Invalid RLE counts string: it ends inside a number');
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`Invalid RLE counts string: character ${JSON.stringify(s[p])}`);
      x += (c & 0x1f) * 32 ** k;
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 32 ** k; // sign-extend
    }
    const m = counts.length;
    counts.push(m > 2 ? x + counts[m - 2]! : x);
  }
  return counts;
}

/** A segment's mask facts (bbox: tight [x, y, width, height]; [0, 0, 0, 0] when empty). */
export type MaskSummary = Omit<Segment, 'score'>;

/** encodeRle() and maskStats() in one column-major pass. */
export function summariseMask(mask: BinaryMask): MaskSummary {
  return columnScan(mask).summary();
}

/** COCO compressed RLE of a mask. */
export function encodeRle(mask: BinaryMask): RleMask {
  return { size: [mask.height, mask.width], counts: countsToString(maskRunLengths(mask)) };
}

/**
 * Mask from a COCO compressed RLE; throws if the runs do not cover the mask
 * exactly. `into`, when given, holds the pixels (cleared first) instead of a new array.
 */
export function decodeRle(rle: RleMask, into?: Uint8Array): BinaryMask {
  const [h, w] = rle.size;
  const counts = countsFromString(rle.counts);
  const total = w * h;
  let sum = 0;
  for (const c of counts) {
    if (c < 0) throw new Error('Invalid RLE: negative run length');
    sum += c;
  }
  if (sum !== total) throw new Error(`Invalid RLE: runs cover ${sum} pixels, the mask has ${h}x${w} = ${total}`);
  if (into && into.length < total) throw new Error(`decodeRle: ${into.length} bytes cannot hold a ${h}x${w} mask`);
  const data = into ? into.subarray(0, total).fill(0) : new Uint8Array(total);
  if (total === 0) return { width: w, height: h, data };
  // Walk column-major with (x, y) so no pixel needs a division.
  let x = 0;
  let y = 0;
  for (let i = 0; i < counts.length; i++) {
    const run = counts[i]!;
    if (i % 2 === 0) {
      const p = x * h + y + run;
      x = Math.floor(p / h);
      y = p - x * h;
      continue;
    }
    for (let j = 0; j < run; j++) {
      data[y * w + x] = 1;
      if (++y === h) {
        y = 0;
        x++;
      }
    }
  }
  return { width: w, height: h, data };
}
