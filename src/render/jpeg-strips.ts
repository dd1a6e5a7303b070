/**
 * A JPEG encoded in horizontal strips at once, joined into one baseline JPEG
 * with restart markers. libjpeg encodes on one thread; an overlay is encoded
 * at the very end of a turn, when the cores are otherwise idle, so two strips
 * side by side cut a 1920x1080 overlay's encode by about a third on the 2-core VM.
 *
 * Why the join is exact: every strip but the last is a whole number of MCU
 * rows (16 pixels with 4:2:0 chroma), so no chroma block or edge padding
 * crosses a strip boundary, and each strip's coefficients are those the whole
 * image would get. A restart marker resets the DC predictors and byte-aligns
 * the entropy data exactly as the start and end of a separate encode do, so
 * strip N's entropy data becomes restart interval N unchanged. All strips
 * share the quantisation and (standard, unoptimised) Huffman tables.
 */
import os from 'node:os';
import sharp from 'sharp';
import { ownedConcat, ownedCopy } from './owned-bytes.js';

/** MCU height with 4:2:0 chroma subsampling (forced below). */
const MCU = 16;
/** Strips shorter than this are not worth a separate encode. */
const MIN_STRIP_ROWS = 128;
/** The restart interval (MCUs per strip) is a 16-bit field. */
const MAX_INTERVAL = 0xffff;

const SOF0 = 0xc0;
const SOS = 0xda;
const EOI = [0xff, 0xd9];

function encode(pixels: Uint8Array, width: number, height: number, quality: number): Promise<Buffer> {
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    // Huffman table optimisation would give each strip its own tables; it also cost 3x the time for 13% smaller files.
    .jpeg({ quality, mozjpeg: false, optimiseCoding: false, chromaSubsampling: '4:2:0' })
    .toBuffer();
}

/** Rows per strip (a multiple of the MCU height), or the whole height when one encode is best. */
export function stripRows(width: number, height: number, threads = os.availableParallelism()): number {
  const mcusPerRow = Math.ceil(width / MCU);
  const maxRows = Math.floor(MAX_INTERVAL / mcusPerRow) * MCU;
  const wanted = Math.ceil(height / Math.max(1, Math.min(threads, 4)) / MCU) * MCU;
  const rows = Math.min(wanted, maxRows);
  if (rows < MIN_STRIP_ROWS || rows >= height) return height;
  return rows;
}

/** `pixels`: RGB, 3 bytes per pixel, row-major; `threads`: how many strips may be encoded at once. */
export async function encodeJpeg(pixels: Uint8Array, width: number, height: number, quality: number, threads = os.availableParallelism()): Promise<Buffer> {
  const rows = stripRows(width, height, threads);
  if (rows >= height) return ownedCopy(await encode(pixels, width, height, quality));
  const rowBytes = width * 3;
  const parts: Promise<Buffer>[] = [];
  for (let y = 0; y < height; y += rows) {
    const h = Math.min(rows, height - y);
    parts.push(encode(pixels.subarray(y * rowBytes, (y + h) * rowBytes), width, h, quality));
  }
  return joinStrips(await Promise.all(parts), height, Math.ceil(width / MCU) * (rows / MCU));
}

interface Layout {
  /** Offset of the SOF0 segment's marker. */
  sof: number;
  /** Offset of the SOS segment's marker. */
  sos: number;
  /** Entropy-coded data: [start, end). */
  data: [number, number];
}

function layout(jpeg: Buffer): Layout {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('JPEG strip: no SOI marker');
  let sof = -1;
  for (let at = 2; at + 4 <= jpeg.length; ) {
    if (jpeg[at] !== 0xff) throw new Error(`JPEG strip: expected a marker at byte ${at}`);
    const marker = jpeg[at + 1]!;
    const end = at + 2 + jpeg.readUInt16BE(at + 2);
    if (marker === SOF0) sof = at;
    if (marker === SOS) {
      if (sof < 0) throw new Error('JPEG strip: no baseline SOF0 segment');
      if (jpeg[jpeg.length - 2] !== EOI[0] || jpeg[jpeg.length - 1] !== EOI[1]) throw new Error('JPEG strip: no EOI at the end');
      return { sof, sos: at, data: [end, jpeg.length - 2] };
    }
    at = end;
  }
  throw new Error('JPEG strip: no SOS segment');
}

/** One JPEG of `height` rows from strips of `interval` MCUs each (the last may be shorter). */
export function joinStrips(strips: readonly Buffer[], height: number, interval: number): Buffer {
  if (interval > MAX_INTERVAL) throw new Error(`JPEG strip: restart interval ${interval} is over ${MAX_INTERVAL}`);
  const first = strips[0]!;
  const head = layout(first);
  // Tables and frame header of the first strip, its height made the whole image's.
  const header = Buffer.from(first.subarray(0, head.sos));
  header.writeUInt16BE(height, head.sof + 5);
  const dri = Buffer.from([0xff, 0xdd, 0x00, 0x04, interval >> 8, interval & 0xff]);
  const pieces: Buffer[] = [header, dri, first.subarray(head.sos, head.data[0])];
  strips.forEach((strip, i) => {
    const own = i === 0 ? head : layout(strip);
    // Every strip must carry the same tables and frame (bar its height), or the join is wrong.
    const sameTables =
      own.sos === head.sos &&
      strip.compare(first, 0, head.sof + 5, 0, head.sof + 5) === 0 &&
      strip.compare(first, head.sof + 7, head.data[0], head.sof + 7, head.data[0]) === 0;
    if (!sameTables) throw new Error(`JPEG strip ${i}: its tables differ from the first strip's`);
    const { data } = own;
    if (i > 0) pieces.push(Buffer.from([0xff, 0xd0 + ((i - 1) % 8)]));
    pieces.push(strip.subarray(data[0], data[1]));
  });
  pieces.push(Buffer.from(EOI));
  return ownedConcat(pieces);
}
