import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { writeToyPack } from '../../models/generator/toy.js';
import { TOY_PALETTE, type ToyColourName, toyColourIndex } from '../../models/generator/toy-palette.js';

/** A fresh toy pack in a temp folder; `cleanup` removes it. */
export async function makeToyPack(dtype: 'float32' | 'float16' = 'float32'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'lisa-toy-'));
  const dir = path.join(root, `toy-${dtype}`);
  await writeToyPack(dir, { dtype });
  return { dir, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export interface Shape {
  colour: ToyColourName;
  kind: 'rect' | 'circle';
  /** Bounding box in pixels. */
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

const WHITE: [number, number, number] = [255, 255, 255];

/** Flat palette-coloured shapes on white, drawn exactly (no anti-aliasing). */
export function drawShapes(width: number, height: number, shapes: readonly Shape[], background = WHITE): RawImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(background, i * 3);
  for (const shape of shapes) {
    const rgb = TOY_PALETTE.find((c) => c.name === shape.colour)!.rgb;
    const cx = shape.x + shape.w / 2;
    const cy = shape.y + shape.h / 2;
    for (let y = Math.max(0, shape.y); y < Math.min(height, shape.y + shape.h); y++) {
      for (let x = Math.max(0, shape.x); x < Math.min(width, shape.x + shape.w); x++) {
        if (shape.kind === 'circle') {
          const dx = (x + 0.5 - cx) / (shape.w / 2);
          const dy = (y + 0.5 - cy) / (shape.h / 2);
          if (dx * dx + dy * dy > 1) continue;
        }
        data.set(rgb, (y * width + x) * 3);
      }
    }
  }
  return { data, width, height, channels: 3 };
}

export function rawSharp(image: RawImage): Sharp {
  return sharp(Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength), {
    raw: { width: image.width, height: image.height, channels: image.channels },
  });
}

export async function encodeImage(image: RawImage, format: 'png' | 'jpeg' | 'webp'): Promise<Buffer> {
  const s = rawSharp(image);
  if (format === 'png') return s.png().toBuffer();
  if (format === 'jpeg') return s.jpeg({ quality: 92 }).toBuffer();
  return s.webp({ quality: 92 }).toBuffer();
}

/** Decoded RGB pixels of an encoded file, oriented and without alpha — what the model sees. */
export async function decodedPixels(file: Uint8Array): Promise<RawImage> {
  const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
  return { data, width: info.width, height: info.height, channels: 3 };
}

/** The exact pixel region of a palette colour, by the toy's own membership rule. */
export function truthMask(image: RawImage, colour: ToyColourName): Uint8Array {
  const index = TOY_PALETTE.findIndex((c) => c.name === colour);
  const mask = new Uint8Array(image.width * image.height);
  for (let i = 0; i < mask.length; i++) {
    const o = i * 3;
    mask[i] = toyColourIndex(image.data[o]!, image.data[o + 1]!, image.data[o + 2]!) === index ? 1 : 0;
  }
  return mask;
}

/** Intersection over union; two empty masks agree perfectly (1). */
export function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`mask sizes differ: ${a.length} vs ${b.length}`);
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ? 1 : 0;
    const y = b[i] ? 1 : 0;
    inter += x & y;
    union += x | y;
  }
  return union === 0 ? 1 : inter / union;
}
