/**
 * The toy pack's colour palette and its pixel membership rule. The SAM image
 * encoder graph implements exactly this rule; tests import it to compute
 * ground-truth masks the same way.
 */

export type ToyColourName = 'red' | 'green' | 'blue' | 'yellow' | 'purple' | 'orange';

export interface ToyColour {
  name: ToyColourName;
  rgb: readonly [number, number, number];
}

/** sRGB palette; the order is the order of the colour axes in every graph. */
export const TOY_PALETTE: readonly ToyColour[] = [
  { name: 'red', rgb: [230, 30, 30] },
  { name: 'green', rgb: [30, 170, 60] },
  { name: 'blue', rgb: [30, 80, 230] },
  { name: 'yellow', rgb: [240, 210, 30] },
  { name: 'purple', rgb: [150, 50, 190] },
  { name: 'orange', rgb: [245, 140, 20] },
];

export const TOY_COLOUR_NAMES: readonly ToyColourName[] = TOY_PALETTE.map((c) => c.name);

/** A pixel further than this (Euclidean RGB) from every palette colour belongs to none. */
export const TOY_MAX_COLOUR_DISTANCE = 80;

/**
 * The palette index a pixel belongs to, or -1: the nearest palette colour
 * (the first one on an exact tie), if it is within TOY_MAX_COLOUR_DISTANCE.
 */
export function toyColourIndex(r: number, g: number, b: number): number {
  let best = -1;
  let bestDistance2 = Infinity;
  TOY_PALETTE.forEach((colour, i) => {
    const dr = r - colour.rgb[0];
    const dg = g - colour.rgb[1];
    const db = b - colour.rgb[2];
    const d2 = dr * dr + dg * dg + db * db;
    if (d2 < bestDistance2) {
      bestDistance2 = d2;
      best = i;
    }
  });
  return bestDistance2 <= TOY_MAX_COLOUR_DISTANCE * TOY_MAX_COLOUR_DISTANCE ? best : -1;
}
