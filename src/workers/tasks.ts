/**
 * Pixel work that runs on worker threads: every per-pixel loop of a turn
 * (resampling, normalising, mask upsampling, RLE, overlay drawing) would
 * otherwise block the event loop that serves the chat surfaces for tens of ms
 * per turn. Each task takes and returns plain, cloneable data.
 */
import { Piscina } from 'piscina';
import { decodeImage } from '../engine/image.js';
import type { PackManifest } from '../engine/manifest.js';
import { decodeRle, encodeRle, maskStats } from '../engine/mask.js';
import { masksFromLowRes } from '../engine/postprocess.js';
import { clipPixelValues, samPixelValues } from '../engine/preprocess.js';
import type { BoundingBox, DecodedImage, RleMask } from '../engine/types.js';
import { type OverlayFormat, renderOverlay } from '../render/overlay.js';

export async function decode(input: { bytes: Uint8Array; maxPixels: number }): Promise<DecodedImage> {
  return decodeImage(input.bytes, { maxPixels: input.maxPixels });
}

export async function clip(input: { image: DecodedImage; clip: PackManifest['clip'] }): Promise<Float32Array> {
  return Piscina.move(await clipPixelValues(input.image, input.clip)) as Float32Array;
}

export async function sam(input: { image: DecodedImage; sam: PackManifest['sam'] }) {
  return samPixelValues(input.image, input.sam);
}

export interface MaskOutput {
  data: Uint8Array;
  width: number;
  height: number;
  area: number;
  bbox: BoundingBox;
  rle: RleMask;
}

export function masks(input: {
  lowRes: Float32Array;
  count: number;
  lowSize: number;
  samSize: number;
  resized: { width: number; height: number };
  original: { width: number; height: number };
}): MaskOutput[] {
  return masksFromLowRes(input.lowRes, input.count, input.lowSize, input.samSize, input.resized, input.original).map((mask) => ({
    ...mask,
    ...maskStats(mask),
    rle: encodeRle(mask),
  }));
}

export async function overlay(input: {
  image: DecodedImage;
  segments: { rle: RleMask; rgb: [number, number, number] }[];
  format: OverlayFormat;
}) {
  const rendered = await renderOverlay(
    input.image,
    input.segments.map((s) => ({ mask: decodeRle(s.rle), rgb: s.rgb })),
    { format: input.format },
  );
  return rendered;
}
