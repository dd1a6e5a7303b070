import sharp from 'sharp';
import type { DecodedImage, Segment } from '../engine/types.js';
import type { OverlayFormat } from '../render/formats.js';
import { replaceSegTokens } from '../render/markers.js';
import { type SegmentColour, segmentColour } from '../render/palette.js';
import type { OverlayWorkers } from '../render/overlay-workers.js';
import type { ReplyImage, ReplySegment } from './types.js';

/** `colours` as chosen for the image (colour-choice.ts); without them, the palette in order. */
export function replySegments(segments: readonly Segment[], colours?: readonly SegmentColour[]): ReplySegment[] {
  return segments.map((s, index) => ({
    index,
    colour: colours?.[index] ?? segmentColour(index),
    bbox: s.bbox,
    area: s.area,
    score: s.score,
    rle: s.rle,
    empty: s.area === 0,
  }));
}

/** The answer with each `[SEG]` as the coloured square of its overlay colour. */
export function markedText(rawText: string, segToken: string, segments: readonly ReplySegment[]): string {
  return replaceSegTokens(rawText, segToken, (i) => segments[i]?.colour.emoji ?? '▫️');
}

const EXTENSIONS: Record<OverlayFormat, string> = { png: 'png', jpeg: 'jpg', webp: 'webp' };

/**
 * Draws the masks over the image. When the encoded overlay is over `maxBytes`
 * (a platform's upload limit), JPEG comes next, then smaller JPEGs.
 */
export async function overlayImage(
  pool: OverlayWorkers,
  image: DecodedImage,
  segments: readonly ReplySegment[],
  options: { format: OverlayFormat; maxBytes?: number },
): Promise<ReplyImage> {
  const masks = segments.map((s) => ({ rle: s.rle, rgb: s.colour.rgb, bbox: s.bbox }));
  let rendered = await pool.overlay(image, masks, options.format);
  const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
  if (rendered.data.length > maxBytes && options.format !== 'jpeg') {
    rendered = await pool.overlay(image, masks, 'jpeg');
  }
  // Workers hand back a Uint8Array; adapters expect a Buffer (a view, not a copy).
  let data = Buffer.from(rendered.data.buffer, rendered.data.byteOffset, rendered.data.byteLength);
  let { width, height } = rendered;
  let format: OverlayFormat = rendered.format;
  for (let attempt = 0; data.length > maxBytes && attempt < 6; attempt++) {
    const scale = Math.sqrt(maxBytes / data.length) * 0.9;
    width = Math.max(1, Math.floor(width * scale));
    height = Math.max(1, Math.floor(height * scale));
    data = await sharp(data).resize(width, height, { fit: 'fill' }).jpeg({ quality: 80 }).toBuffer();
    format = 'jpeg';
  }
  const contentType = format === 'png' ? 'image/png' : format === 'jpeg' ? 'image/jpeg' : 'image/webp';
  return { data, contentType, format, width, height, filename: `lisa-overlay.${EXTENSIONS[format]}` };
}
