/**
 * Overlay images: each mask's pixels turned to their grey (luma) and blended
 * at 50% with the mask's colour, so the fill shows the marker's hue whatever
 * the object's own colour (a blue object under red is not purple), with a
 * solid contour inside its boundary and, outermost, a 1 px black or white
 * line (whichever contrasts with the pixel beneath), so a mask stays visible
 * on any object. Which colour each mask gets: colour-choice.ts. All pixel
 * work is done on raw buffers, limited to each mask's bounding box; sharp
 * only encodes the result.
 */
import sharp from 'sharp';
import { maskStats } from '../engine/mask.js';
import type { BinaryMask, BoundingBox, DecodedImage } from '../engine/types.js';
import { type ScratchBuffer, scratchArrayBuffer } from '../memory/scratch.js';
import { luma } from './colour-choice.js';
import { bandStride, contourBand, contourWorkBytes } from './contour.js';
import { encodeJpeg } from './jpeg-strips.js';
import { ownedCopy } from './owned-bytes.js';
import type { OverlayFormat } from './formats.js';


export interface OverlaySegment {
  mask: BinaryMask;
  rgb: [number, number, number];
  /** The mask's box when already known (it saves a pass over the mask); [0, 0, 0, 0] when empty. */
  bbox?: BoundingBox;
}

export interface OverlayOptions {
  format?: OverlayFormat;
  /** JPEG / WebP quality, 1-100 (default 85). */
  quality?: number;
  /** Memory reused from overlay to overlay by whoever draws many (a worker thread); fresh memory without it. */
  scratch?: OverlayScratch;
}

/** The canvas, the contour bands and the erosion's work memory (fresh pages are slow: see scratch.ts). */
export interface OverlayScratch {
  canvas: ScratchBuffer<ArrayBuffer>;
  contours: ScratchBuffer<ArrayBuffer>;
  work: ScratchBuffer<ArrayBuffer>;
}

export function overlayScratch(): OverlayScratch {
  return { canvas: scratchArrayBuffer(), contours: scratchArrayBuffer(), work: scratchArrayBuffer() };
}

function take(scratch: ScratchBuffer<ArrayBuffer> | undefined, bytes: number): ArrayBuffer {
  return scratch?.take(bytes) ?? new ArrayBuffer(bytes);
}

export interface RenderedImage {
  /** Owns its whole ArrayBuffer: a worker can transfer it instead of copying. */
  data: Buffer;
  format: OverlayFormat;
  width: number;
  height: number;
  contentType: string;
}

const CONTENT_TYPES: Record<OverlayFormat, string> = { png: 'image/png', jpeg: 'image/jpeg', webp: 'image/webp' };

/** Contour width in pixels: 2, or 3 on large images where 2 px would vanish when the image is shown scaled down. */
export function contourWidth(width: number, height: number): number {
  return Math.max(width, height) >= 1200 ? 3 : 2;
}

/** Draws the segments (in order, later ones on top) over `image` and encodes the result. */
export async function renderOverlay(
  image: DecodedImage,
  masks: readonly OverlaySegment[],
  options: OverlayOptions = {},
): Promise<RenderedImage> {
  const { width, height } = image;
  if (image.data.length !== width * height * 3) throw new Error(`Overlay: image data is not ${width}x${height} RGB`);
  const format = options.format ?? 'png';
  // Drawn on a copy: the caller's image stays as it was.
  const { scratch } = options;
  const canvas = take(scratch?.canvas, image.data.length);
  try {
    const out = Buffer.from(canvas, 0, image.data.length);
    out.set(image.data);
    const data = await drawAndEncode(out, image, masks, format, options.quality ?? 85, scratch);
    return { data, format, width, height, contentType: CONTENT_TYPES[format] };
  } finally {
    scratch?.canvas.give(canvas);
  }
}

async function drawAndEncode(
  out: Buffer,
  { width, height, data: beneath }: DecodedImage,
  masks: readonly OverlaySegment[],
  format: OverlayFormat,
  quality: number,
  scratch: OverlayScratch | undefined,
): Promise<Buffer> {
  const thickness = contourWidth(width, height);
  const drawn: { mask: BinaryMask; box: BoundingBox; rgb: [number, number, number] }[] = [];
  for (const { mask, rgb, bbox } of masks) {
    if (mask.width !== width || mask.height !== height) {
      throw new Error(`Overlay: a ${mask.width}x${mask.height} mask on a ${width}x${height} image`);
    }
    const box = bbox ?? maskStats(mask).bbox;
    if (box[2] === 0 || box[3] === 0) continue;
    drawn.push({ mask, box, rgb });
  }
  // The contour bands (one per mask, box-sized) and the erosion's work memory.
  const bandBytes = drawn.reduce((n, { box }) => n + bandStride(box[2]) * box[3], 0);
  const workBytes = drawn.reduce((n, { box }) => Math.max(n, contourWorkBytes(box, thickness)), 0);
  // Twice: the contour, and its outermost pixel as the contrasting line.
  const memory = take(scratch?.contours, 2 * bandBytes);
  const work = take(scratch?.work, workBytes);
  try {
    let at = 0;
    const contours = drawn.map(({ mask, box, rgb }) => {
      blendMask(out, width, mask.data, box, rgb);
      const size = bandStride(box[2]) * box[3];
      const band = new Uint8Array(memory, at, size);
      const line = new Uint8Array(memory, at + size, size);
      at += 2 * size;
      contourBand(mask, box, thickness, band, work);
      contourBand(mask, box, 1, line, work);
      return { band, line, box, rgb };
    });
    // Contours last, so a later segment's fill does not wash out an earlier outline.
    for (const { band, box, rgb } of contours) paintBand(out, width, band, box, rgb);
    for (const { line, box } of contours) paintLine(out, beneath, width, line, box);
  } finally {
    scratch?.contours.give(memory);
    scratch?.work.give(work);
  }
  return encode(out, width, height, format, quality);
}


/** An 8-bit greyscale PNG of the mask: 255 inside, 0 outside. */
export async function renderMaskPng(mask: BinaryMask): Promise<Buffer> {
  const { width, height, data } = mask;
  const grey = Buffer.alloc(width * height);
  for (let i = 0; i < grey.length; i++) if (data[i] !== 0) grey[i] = 255;
  return sharp(grey, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png({ compressionLevel: 6 }).toBuffer();
}

function blendMask(out: Uint8Array, width: number, data: Uint8Array, [bx, by, bw, bh]: number[], [r, g, b]: number[]): void {
  for (let y = by; y < by + bh; y++) {
    for (let i = y * width + bx, end = i + bw; i < end; i++) {
      if (data[i] === 0) continue;
      const p = i * 3;
      const l = (77 * out[p]! + 150 * out[p + 1]! + 29 * out[p + 2]! + 128) >> 8;
      // (a + b + 1) >> 1 is round-half-up of the 50% mix.
      out[p] = (l + r! + 1) >> 1;
      out[p + 1] = (l + g! + 1) >> 1;
      out[p + 2] = (l + b! + 1) >> 1;
    }
  }
}

function paintBand(out: Uint8Array, width: number, band: Uint8Array, [bx, by, bw, bh]: number[], [r, g, b]: number[]): void {
  const stride = bandStride(bw);
  // Bands are mostly empty: four pixels are skipped per zero word.
  const words = new Uint32Array(band.buffer, band.byteOffset, band.length / 4);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      if ((x & 3) === 0 && words[(y * stride + x) >> 2] === 0) {
        x += 3;
        continue;
      }
      if (band[y * stride + x] === 0) continue;
      const p = ((by + y) * width + bx + x) * 3;
      out[p] = r!;
      out[p + 1] = g!;
      out[p + 2] = b!;
    }
  }
}

/** Black over light pixels, white over dark ones: judged on the image as it was, before any fill. */
function paintLine(out: Uint8Array, beneath: Uint8Array, width: number, line: Uint8Array, [bx, by, bw, bh]: number[]): void {
  const stride = bandStride(bw);
  const words = new Uint32Array(line.buffer, line.byteOffset, line.length / 4);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      if ((x & 3) === 0 && words[(y * stride + x) >> 2] === 0) {
        x += 3;
        continue;
      }
      if (line[y * stride + x] === 0) continue;
      const p = ((by + y) * width + bx + x) * 3;
      const v = luma(beneath[p]!, beneath[p + 1]!, beneath[p + 2]!) >= 128 ? 0 : 255;
      out[p] = v;
      out[p + 1] = v;
      out[p + 2] = v;
    }
  }
}

async function encode(pixels: Buffer, width: number, height: number, format: OverlayFormat, quality: number): Promise<Buffer> {
  const img = sharp(pixels, { raw: { width, height, channels: 3 } });
  // Speed first: these are sent once to a chat and viewed once. For PNG, adaptive filtering
  // cut a photo-like 1920x1080 from 5.6 to 3.1 MB for ~25% more time, which
  // the smaller upload repays; higher zlib levels gained nothing over 3.
  if (format === 'jpeg') return encodeJpeg(pixels, width, height, quality);
  if (format === 'webp') return ownedCopy(await img.webp({ quality, effort: 0 }).toBuffer());
  return ownedCopy(await img.png({ compressionLevel: 3, adaptiveFiltering: true }).toBuffer());
}
