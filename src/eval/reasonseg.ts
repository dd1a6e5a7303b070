/**
 * ReasonSeg's folder format (LISA's `reason_seg/ReasonSeg/{train,val,test}`):
 * `NAME.jpg` with `NAME.json` beside it, and its ground truth built as the
 * reference's `get_mask_from_json` builds it.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../errors.js';
import { type Point, drawPolygon, polygonArea } from './polygon.js';

/** Ground-truth value of pixels left out of scoring. */
export const IGNORE = 255;

export interface Sample {
  /** File name of the image, relative to the data folder (what results are keyed by). */
  image: string;
  imagePath: string;
  jsonPath: string;
}

export interface Annotation {
  /** The first question (the reference evaluates `text[0]` only). */
  text: string;
  isSentence: boolean;
  shapes: { label: string; points: Point[] }[];
}

/** The samples of a folder: every `*.jpg` (as the reference globs), by name. */
export async function listSamples(dir: string): Promise<Sample[]> {
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) throw new UserInputError(`--data is not a folder: ${dir}`, 'config_invalid');
    names = await readdir(dir);
  } catch (error) {
    if (error instanceof UserInputError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new UserInputError(code === 'ENOENT' ? `--data folder not found: ${dir}` : `--data folder cannot be read: ${dir} (${code})`, 'config_invalid');
  }
  return names
    .filter((name) => name.endsWith('.jpg'))
    .sort()
    .map((image) => ({ image, imagePath: path.join(dir, image), jsonPath: path.join(dir, `${image.slice(0, -'.jpg'.length)}.json`) }));
}

/** A sample that cannot be scored: the reason is printed as a warning and the sample counted as skipped. */
export class BadSample extends Error {}

/** Reads a sample's JSON: UTF-8, or cp1252 where that fails to parse (as the reference falls back). */
export async function readAnnotation(jsonPath: string): Promise<Annotation> {
  let bytes: Buffer;
  try {
    bytes = await readFile(jsonPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new BadSample(code === 'ENOENT' ? `no ${path.basename(jsonPath)} beside it` : `${path.basename(jsonPath)} cannot be read (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    try {
      json = JSON.parse(decodeCp1252(bytes));
    } catch (error) {
      throw new BadSample(`${path.basename(jsonPath)} is not valid JSON (${(error as Error).message})`);
    }
  }
  return parseAnnotation(json, path.basename(jsonPath));
}

function parseAnnotation(json: unknown, name: string): Annotation {
  if (typeof json !== 'object' || json === null) throw new BadSample(`${name} is not a JSON object`);
  const { text, shapes, is_sentence: isSentence } = json as Record<string, unknown>;
  const first = Array.isArray(text) ? text[0] : text;
  if (typeof first !== 'string' || first.trim() === '') throw new BadSample(`${name} has no "text"`);
  if (!Array.isArray(shapes)) throw new BadSample(`${name} has no "shapes"`);
  const parsed = shapes.map((shape: unknown, i) => {
    const { label, points } = (shape ?? {}) as Record<string, unknown>;
    if (typeof label !== 'string') throw new BadSample(`${name}: shape ${i + 1} has no "label"`);
    const valid = Array.isArray(points) && points.every((p) => Array.isArray(p) && p.length >= 2 && Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (!valid) throw new BadSample(`${name}: shape ${i + 1} ("${label}") has no valid "points"`);
    // numpy's int32 conversion truncates toward zero.
    return { label, points: (points as number[][]).map((p): Point => [Math.trunc(p[0]!), Math.trunc(p[1]!)]) };
  });
  for (const [i, shape] of parsed.entries()) {
    if (shape.label.toLowerCase() !== 'flag' && shape.points.length < 3) {
      throw new BadSample(`${name}: shape ${i + 1} ("${shape.label}") is a polygon of ${shape.points.length} point(s), fewer than 3`);
    }
  }
  return { text: first.trim(), isSentence: isSentence === true, shapes: parsed };
}

/**
 * The ground truth: 1 target, 255 ignored, 0 elsewhere. `flag` shapes are
 * dropped; the rest are painted largest first (area as painted alone, ties
 * with the later shape first: numpy's argsort, reversed), so a smaller shape
 * drawn later wins where they overlap.
 */
export function groundTruth(annotation: Annotation, width: number, height: number): Uint8Array {
  const shapes = annotation.shapes
    .filter((s) => s.label.toLowerCase() !== 'flag')
    .map((shape, index) => ({ shape, index, area: polygonArea(width, height, shape.points) }))
    .sort((a, b) => b.area - a.area || b.index - a.index);
  const mask = new Uint8Array(width * height);
  for (const { shape } of shapes) {
    drawPolygon(mask, width, height, shape.points, shape.label.toLowerCase().includes('ignore') ? IGNORE : 1);
  }
  return mask;
}

/** The question as the reference's validation words it (utils/dataset.py ValDataset). */
export function paperQuestion(annotation: Annotation): string {
  return annotation.isSentence
    ? ` ${annotation.text} Please output segmentation mask.`
    : ` What is ${annotation.text} in this image? Please output segmentation mask.`;
}

/** The answer validation gives instead of generating one. */
export const PAPER_ANSWER = '[SEG].';

const CP1252_HIGH =
  '\u20ac\ufffd\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\ufffd\u017d\ufffd' +
  '\ufffd\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\ufffd\u017e\u0178';

function decodeCp1252(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b >= 0x80 && b < 0xa0 ? CP1252_HIGH[b - 0x80] : String.fromCharCode(b);
  return out;
}
