/**
 * Model inputs from a decoded image, exactly as the LISA reference builds them
 * (see MODEL_PACK.md, "Preprocessing (exact)"): CLIP through Hugging Face's
 * CLIPImageProcessor, SAM through segment-anything's ResizeLongestSide and
 * LISA's `preprocess`. Resizing is Pillow's, reproduced bit for bit (resample.ts),
 * and the float arithmetic follows the reference's float32 steps, so the tensors
 * are identical to the reference's, not merely close.
 */
import { type ScratchBuffer, scratchArrayBuffer } from '../memory/scratch.js';
import type { PackManifest } from './manifest.js';
import { type ResampleFilter, type ResampleWindow, resizeRgb } from './resample.js';
import type { DecodedImage } from './types.js';

type Rgb3 = readonly [number, number, number];

export interface Size {
  width: number;
  height: number;
}

/**
 * CLIPImageProcessor's resize: shortest side to `size`, the other
 * `int(size * long / short)` (truncated, as Python's int() does).
 */
export function clipResizeShape(width: number, height: number, size: number): Size {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** ResizeLongestSide.get_preprocess_shape: long side to `size`, each side `int(side * scale + 0.5)`. */
export function samResizeShape(width: number, height: number, size: number): Size {
  const scale = (size * 1.0) / Math.max(width, height);
  return { width: Math.trunc(width * scale + 0.5), height: Math.trunc(height * scale + 0.5) };
}

/** CLIP `pixel_values`: resize, centre crop, /255, normalise; CHW float32 of 3 x size x size. */
export async function clipPixelValues(image: DecodedImage, clip: PackManifest['clip']): Promise<Float32Array> {
  const out = new Float32Array(3 * clip.size * clip.size);
  clipPixelRows(image, clip, out, 0, clip.size);
  return out;
}

/**
 * Rows [from, to) of CLIP's pixel values into `out` (3 x size x size). As with
 * SAM's, every row is computed independently, so threads can share the work
 * and the result is the same, bit for bit.
 */
export function clipPixelRows(image: DecodedImage, clip: PackManifest['clip'], out: Float32Array, from: number, to: number, scratch?: PreprocessScratch): void {
  const { size } = clip;
  if (!(from >= 0 && from < to && to <= size)) throw new Error(`CLIP rows ${from}..${to} are outside 0..${size}`);
  const resized = clipResizeShape(image.width, image.height, size);
  // HF center_crop: top = (h - size) // 2; only the cropped window is ever computed.
  const window = {
    left: Math.floor((resized.width - size) / 2),
    top: Math.floor((resized.height - size) / 2) + from,
    width: size,
    height: to - from,
  };
  // HF rescales in float64 then casts to float32, and normalises in float32.
  const scale = 1 / 255;
  const luts = channelLuts(clip.mean, clip.std, (v) => Math.fround(v * scale));
  withResized(image, resized, clip.resample, window, scratch, (rgb) => toPlanes(rgb, size, to - from, luts, out, size, from));
}

/**
 * Memory the preprocessing reuses from call to call (fresh pages are slow: see
 * scratch.ts): whoever preprocesses image after image (a pixel worker thread)
 * keeps one and passes it in.
 */
export interface PreprocessScratch {
  /** The resized RGB rows. */
  resized: ScratchBuffer<ArrayBuffer>;
  /** The resampler's horizontal pass. */
  resample: ScratchBuffer<ArrayBuffer>;
}

export function preprocessScratch(): PreprocessScratch {
  return { resized: scratchArrayBuffer(), resample: scratchArrayBuffer() };
}

/** The resized RGB rows, for `use` only. */
function withResized(
  image: DecodedImage,
  resized: Size,
  filter: ResampleFilter,
  window: ResampleWindow,
  scratch: PreprocessScratch | undefined,
  use: (rgb: Uint8Array) => void,
): void {
  const bytes = window.width * window.height * 3;
  const memory = scratch?.resized.take(bytes) ?? new ArrayBuffer(bytes);
  try {
    use(resizeRgb(image, resized.width, resized.height, filter, window, new Uint8Array(memory, 0, bytes), scratch?.resample));
  } finally {
    scratch?.resized.give(memory);
  }
}

/**
 * SAM `pixel_values`: longest side to `size` (bilinear), (v - mean) / std on the
 * 0-255 scale, zero padding bottom/right after normalising; CHW float32 of
 * 3 x size x size, plus the resized size the mask postprocess needs.
 */
export async function samPixelValues(
  image: DecodedImage,
  sam: PackManifest['sam'],
): Promise<{ data: Float32Array; resized: { height: number; width: number } }> {
  const resized = samResizeShape(image.width, image.height, sam.size);
  // A fresh Float32Array is zero-filled, which is the padding.
  const out = new Float32Array(3 * sam.size * sam.size);
  samPixelRows(image, sam, out, 0, resized.height);
  return { data: out, resized: { height: resized.height, width: resized.width } };
}

/**
 * Rows [from, to) of the resized image into `out` (3 x size x size), their
 * padding columns zeroed (`out` may be a reused buffer). Every output row is
 * computed independently, so two threads can each fill half of a shared `out`
 * and the result is the same, bit for bit. Rows from the resized height on are
 * the caller's to zero.
 */
export function samPixelRows(image: DecodedImage, sam: PackManifest['sam'], out: Float32Array, from: number, to: number, scratch?: PreprocessScratch): void {
  const { size } = sam;
  const resized = samResizeShape(image.width, image.height, size);
  if (!(from >= 0 && from < to && to <= resized.height)) throw new Error(`SAM rows ${from}..${to} are outside 0..${resized.height}`);
  const luts = channelLuts(sam.mean, sam.std, (v) => v);
  const window = { left: 0, top: from, width: resized.width, height: to - from };
  withResized(image, resized, 'bilinear', window, scratch, (rgb) => toPlanes(rgb, resized.width, to - from, luts, out, size, from));
}

/**
 * One 256-entry table per channel: float32((float32(scaled(v)) - float32(mean)) / float32(std)),
 * each operation rounded to float32 like the reference's float32 tensors.
 */
function channelLuts(mean: Rgb3, std: Rgb3, scaled: (v: number) => number): [Float32Array, Float32Array, Float32Array] {
  const make = (c: 0 | 1 | 2) => {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.fround(Math.fround(scaled(v)) - m) / s;
    return lut;
  };
  return [make(0), make(1), make(2)];
}

/**
 * Interleaved RGB (width x height) -> three planes of `planeSize` x `planeSize`,
 * top-left aligned, from row `firstRow`; the rest of each written row is zeroed.
 */
function toPlanes(
  rgb: Uint8Array,
  width: number,
  height: number,
  [lr, lg, lb]: [Float32Array, Float32Array, Float32Array],
  out: Float32Array,
  planeSize: number,
  firstRow = 0,
): void {
  const plane = planeSize * planeSize;
  for (let y = 0; y < height; y++) {
    let p = y * width * 3;
    let o = (firstRow + y) * planeSize;
    const end = o + width;
    for (; o < end; o++, p += 3) {
      out[o] = lr[rgb[p]!]!;
      out[o + plane] = lg[rgb[p + 1]!]!;
      out[o + 2 * plane] = lb[rgb[p + 2]!]!;
    }
    if (width < planeSize) {
      const rowEnd = (firstRow + y + 1) * planeSize;
      for (let c = 0; c < 3; c++) out.fill(0, end + c * plane, rowEnd + c * plane);
    }
  }
}
