/**
 * The outline drawn inside each mask: mask pixels within `t` pixels
 * (Chebyshev distance) of a pixel outside it, i.e. the mask minus its erosion
 * by a (2t+1)^2 square. The image border does not count as outside, so a mask
 * cut by the frame gets no outline along it.
 *
 * The erosion is separable (a horizontal then a vertical AND over 2t+1
 * pixels), and mask bytes are 0 or 1, so it runs on 32-bit words: four pixels
 * per AND. That is several times faster than per-pixel run
 * counting.
 */
import type { BinaryMask, BoundingBox } from '../engine/types.js';

/** Bytes per row of a band (and of the erosion's rows): the box width rounded up to whole words. */
export function bandStride(boxWidth: number): number {
  return Math.ceil(boxWidth / 4) * 4;
}

/** Bytes contourBand() needs as `work` for a box of this size. */
export function contourWorkBytes([, , bw, bh]: BoundingBox, t: number): number {
  const stride = bandStride(bw);
  const paddedRows = bh + 2 * t;
  return paddedRows * paddedWidth(stride, t) + paddedRows * stride;
}

function paddedWidth(stride: number, t: number): number {
  // Room for a word read starting at any column of the last word of a row, 2t columns on.
  return bandStride(stride + 2 * t + 4);
}

const ONES = 0x01010101;

/**
 * Writes the outline of `mask` within its box into `band` (bh rows of
 * bandStride(bw) bytes, 1 on the outline; columns from bw on are undefined).
 * `work` is scratch of at least contourWorkBytes(); `band` must start at a
 * multiple of 4 bytes. Mask bytes must be 0 or 1.
 */
export function contourBand(mask: BinaryMask, box: BoundingBox, t: number, band: Uint8Array, work: ArrayBuffer): void {
  const [bx, by, bw, bh] = box;
  const { width: W, height: H, data } = mask;
  const stride = bandStride(bw);
  const pw = paddedWidth(stride, t);
  const paddedRows = bh + 2 * t;

  // The box with a t-pixel margin: off the image counts as inside (1), the
  // margin inside the image is outside the mask (0: the box is tight).
  const padded = new Uint8Array(work, 0, paddedRows * pw);
  for (let py = 0; py < paddedRows; py++) {
    const y = by - t + py;
    const row = padded.subarray(py * pw, (py + 1) * pw);
    if (y < 0 || y >= H) {
      row.fill(1);
      continue;
    }
    row.fill(0);
    const left = Math.max(0, t - bx); // columns off the image on the left
    row.fill(1, 0, left);
    const rightEdge = t + (W - bx); // first padded column off the image on the right
    if (rightEdge < pw) row.fill(1, rightEdge);
    if (y >= by && y < by + bh) row.set(data.subarray(y * W + bx, y * W + bx + bw), t);
  }

  // Horizontal erosion: word at column x = AND of the padded row's words at x .. x + 2t.
  const view = new DataView(work, 0, paddedRows * pw);
  const horizontal = new Uint32Array(work, paddedRows * pw, (paddedRows * stride) / 4);
  for (let py = 0; py < paddedRows; py++) {
    const rowStart = py * pw;
    const outStart = (py * stride) / 4;
    for (let x = 0; x < stride; x += 4) {
      let word = view.getUint32(rowStart + x, true);
      for (let k = 1; k <= 2 * t; k++) word &= view.getUint32(rowStart + x + k, true);
      horizontal[outStart + x / 4] = word;
    }
  }

  // Vertical erosion of rows y .. y + 2t, and the band: in the mask, not in the erosion.
  const bandWords = new Uint32Array(band.buffer, band.byteOffset, (bh * stride) / 4);
  const wordsPerRow = stride / 4;
  for (let y = 0; y < bh; y++) {
    const maskRow = (y + t) * pw + t;
    for (let w = 0; w < wordsPerRow; w++) {
      let eroded = horizontal[y * wordsPerRow + w]!;
      for (let k = 1; k <= 2 * t; k++) eroded &= horizontal[(y + k) * wordsPerRow + w]!;
      bandWords[y * wordsPerRow + w] = view.getUint32(maskRow + w * 4, true) & (eroded ^ ONES);
    }
  }
}
