/**
 * A small ReasonSeg-format folder drawn from the toy palette: images the toy
 * pack can segment, with LabelMe-style polygons as ReasonSeg's JSON holds
 * them, covering what the ground-truth rules treat specially.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ToyColourName } from '../../models/generator/toy-palette.js';
import { type Shape, drawShapes, rawSharp } from './toy.js';

export interface FixtureShape {
  label: string;
  points: number[][];
}

export interface FixtureSample {
  name: string;
  shapes: Shape[];
  text: string[];
  isSentence: boolean;
  polygons: FixtureShape[];
}

const W = 160;
const H = 120;

/** The corners of a rectangle shape, as an annotator clicks them (inclusive pixel coordinates). */
function corners(x: number, y: number, w: number, h: number): number[][] {
  return [
    [x, y],
    [x + w - 1, y],
    [x + w - 1, y + h - 1],
    [x, y + h - 1],
  ];
}

function octagon(cx: number, cy: number, r: number): number[][] {
  return Array.from({ length: 8 }, (_, i) => [cx + r * Math.cos((i * Math.PI) / 4), cy + r * Math.sin((i * Math.PI) / 4)]);
}

const rect = (colour: ToyColourName, x: number, y: number, w: number, h: number): Shape => ({ colour, kind: 'rect', x, y, w, h });

/** Five samples: a phrase with a `flag` shape, a sentence with an `ignore` region, an empty truth, a miss, nested shapes. */
export const FIXTURE: FixtureSample[] = [
  {
    name: 'a-phrase',
    shapes: [rect('red', 20, 20, 60, 40), rect('blue', 100, 60, 40, 40)],
    text: ['the red box', 'another question the reference never asks'],
    isSentence: false,
    polygons: [
      { label: 'target', points: corners(20, 20, 60, 40) },
      // A deprecated annotation the reference drops.
      { label: 'flag', points: corners(0, 0, 150, 110) },
    ],
  },
  {
    name: 'b-sentence',
    shapes: [{ colour: 'blue', kind: 'circle', x: 50, y: 30, w: 60, h: 60 }],
    text: ['Which shape here is blue? Point at it.'],
    isSentence: true,
    polygons: [
      // Float points, truncated as the reference's int32 conversion does.
      { label: 'target', points: octagon(79.7, 59.6, 29.6) },
      { label: 'ignore', points: corners(50, 30, 30, 20) },
    ],
  },
  {
    name: 'c-empty-truth',
    shapes: [rect('green', 30, 30, 50, 50)],
    text: ['the cat'],
    isSentence: false,
    polygons: [],
  },
  {
    name: 'd-miss',
    shapes: [rect('yellow', 40, 40, 50, 30)],
    text: ['the green thing'],
    isSentence: false,
    polygons: [{ label: 'target', points: corners(40, 40, 50, 30) }],
  },
  {
    name: 'e-nested',
    shapes: [rect('purple', 10, 10, 100, 90), rect('orange', 120, 20, 30, 30)],
    text: ['Something purple, please.'],
    isSentence: true,
    polygons: [
      // Drawn after the larger target whatever the order here: the hole stays ignored.
      { label: 'ignore_hole', points: corners(40, 40, 20, 20) },
      { label: 'target', points: corners(10, 10, 100, 90) },
    ],
  },
];

export async function jpeg(shapes: readonly Shape[], width = W, height = H): Promise<Buffer> {
  // 4:4:4 at full quality: the palette colours survive, so the toy finds them where they were drawn.
  return rawSharp(drawShapes(width, height, shapes)).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
}

export function annotationJson(sample: Pick<FixtureSample, 'text' | 'isSentence' | 'polygons'>): string {
  return JSON.stringify({
    text: sample.text,
    is_sentence: sample.isSentence,
    shapes: sample.polygons.map((p) => ({ label: p.label, labels: [p.label], shape_type: 'polygon', image_name: '', points: p.points, group_id: null })),
  });
}

export async function writeFixture(dir: string, samples: readonly FixtureSample[] = FIXTURE): Promise<void> {
  for (const sample of samples) {
    await writeFile(path.join(dir, `${sample.name}.jpg`), await jpeg(sample.shapes));
    await writeFile(path.join(dir, `${sample.name}.json`), annotationJson(sample));
  }
}
