/**
 * Which palette colour each mask is drawn in. A mask filled with the colour
 * of the object under it disappears ("segment the red thing" drawn in red),
 * so each mask takes the first palette colour, in palette order and not yet
 * taken, whose hue is far from the mean hue of the pixels it covers. The text
 * markers come from the same choice, so they keep matching the drawing.
 */
import { countsFromString } from '../engine/mask.js';
import type { DecodedImage, RleMask } from '../engine/types.js';
import { SEGMENT_COLOUR_COUNT, type SegmentColour, segmentColour } from './palette.js';

/**
 * Chroma distance (RGB minus its luma, see overlay.ts) below which a fill
 * reads as the object's own colour. Twemoji red to brown is ~65, red to
 * orange ~125, red to blue ~240.
 */
const MIN_CHROMA_DISTANCE = 90;

/** Pixels sampled per mask: enough for a stable mean, and bounded whatever the image size. */
const SAMPLES = 1024;

export function luma(r: number, g: number, b: number): number {
  return (77 * r + 150 * g + 29 * b + 128) >> 8;
}

function chroma([r, g, b]: readonly number[]): [number, number, number] {
  const l = luma(r!, g!, b!);
  return [r! - l, g! - l, b! - l];
}

/** The mean colour of the pixels under a mask, from an even sample of them; undefined when the mask is empty. */
export function meanUnder(image: DecodedImage, rle: RleMask, area: number): [number, number, number] | undefined {
  if (area === 0) return undefined;
  const [h, w] = rle.size;
  if (h !== image.height || w !== image.width) throw new Error(`A ${w}x${h} mask on a ${image.width}x${image.height} image`);
  const step = Math.max(1, Math.floor(area / SAMPLES));
  const counts = countsFromString(rle.counts);
  const sum = [0, 0, 0];
  let n = 0;
  let position = 0; // column-major index of the run's start
  let seen = 0; // mask pixels before this run
  for (let i = 0; i < counts.length; i++) {
    const length = counts[i]!;
    if (i % 2 === 1) {
      for (let o = (step - (seen % step)) % step; o < length; o += step) {
        const index = position + o;
        const x = Math.floor(index / h);
        const p = ((index - x * h) * w + x) * 3;
        sum[0] += image.data[p]!;
        sum[1] += image.data[p + 1]!;
        sum[2] += image.data[p + 2]!;
        n++;
      }
      seen += length;
    }
    position += length;
  }
  return n === 0 ? undefined : (sum.map((s) => s / n) as [number, number, number]);
}

/** One colour per segment, in order (see the file comment); empty segments keep their place's usual colour. */
export function chooseSegmentColours(image: DecodedImage, segments: readonly { rle: RleMask; area: number }[]): SegmentColour[] {
  const taken = new Set<number>();
  return segments.map((segment, index) => {
    const mean = meanUnder(image, segment.rle, segment.area);
    if (!mean) return segmentColour(index);
    const under = chroma(mean);
    const free = Array.from({ length: SEGMENT_COLOUR_COUNT }, (_, i) => i).filter((i) => !taken.has(i));
    const candidates = free.length > 0 ? free : Array.from({ length: SEGMENT_COLOUR_COUNT }, (_, i) => i);
    const distance = (i: number) => {
      const c = chroma(segmentColour(i).rgb);
      return Math.hypot(c[0] - under[0], c[1] - under[1], c[2] - under[2]);
    };
    const chosen =
      candidates.find((i) => distance(i) >= MIN_CHROMA_DISTANCE) ?? candidates.reduce((best, i) => (distance(i) > distance(best) ? i : best));
    taken.add(chosen);
    return segmentColour(chosen);
  });
}
