/**
 * Segment colours. Each is the exact colour of a coloured-square emoji as
 * Twemoji draws it (Discord renders emoji with Twemoji), so the marker in the
 * text and the overlay colour of its mask match where it matters most; other
 * platforms' emoji fonts are close.
 */
export interface SegmentColour {
  rgb: [number, number, number];
  /** `#rrggbb`, lower case. */
  hex: string;
  emoji: string;
  name: string;
}

// Order: most distinct first (red, blue, green, yellow...), as the first masks are the common case.
const COLOURS: readonly { name: string; emoji: string; hex: string }[] = [
  { name: 'red', emoji: '\u{1F7E5}', hex: '#dd2e44' },
  { name: 'blue', emoji: '\u{1F7E6}', hex: '#55acee' },
  { name: 'green', emoji: '\u{1F7E9}', hex: '#78b159' },
  { name: 'yellow', emoji: '\u{1F7E8}', hex: '#fdcb58' },
  { name: 'purple', emoji: '\u{1F7EA}', hex: '#aa8ed6' },
  { name: 'orange', emoji: '\u{1F7E7}', hex: '#f4900c' },
  { name: 'brown', emoji: '\u{1F7EB}', hex: '#c1694f' },
];

/** How many distinct colours there are before they repeat. */
export const SEGMENT_COLOUR_COUNT = COLOURS.length;

/** The colour of the `index`-th segment (0-based), cycling past the end of the list. */
export function segmentColour(index: number): SegmentColour {
  if (!Number.isInteger(index) || index < 0) throw new Error(`Segment index must be a non-negative integer, got ${index}`);
  const { name, emoji, hex } = COLOURS[index % COLOURS.length]!;
  const rgb: [number, number, number] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
  return { rgb, hex, emoji, name };
}

/** The palette colour drawn as `hex` (as a session stores it), or undefined for a colour not in the palette. */
export function colourByHex(hex: string): SegmentColour | undefined {
  const index = COLOURS.findIndex((c) => c.hex === hex.toLowerCase());
  return index < 0 ? undefined : segmentColour(index);
}
