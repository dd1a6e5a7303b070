import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TOY_COLOUR_NAMES, type ToyColourName } from '../models/generator/toy-palette.js';
import { Engine } from '../src/engine/engine.js';
import type { ChatTurn } from '../src/engine/types.js';
import { decodeRle } from '../src/engine/mask.js';
import { type RawImage, type Shape, decodedPixels, drawShapes, encodeImage, iou, makeToyPack, rawSharp, truthMask } from './helpers/toy.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

/** Six shapes, one per palette colour, laid out on a grid scaled to the image. */
function paletteScene(width: number, height: number): Shape[] {
  return TOY_COLOUR_NAMES.map((colour, i) => {
    const col = i % 3;
    const row = Math.floor(i / 3);
    const w = Math.round(width * 0.22);
    const h = Math.round(height * 0.3);
    return { colour, kind: i % 2 ? 'circle' : 'rect', x: Math.round(width * (0.05 + col * 0.32)), y: Math.round(height * (0.1 + row * 0.45)), w, h };
  });
}

async function maskIou(engine: Engine, file: Uint8Array, turns: ChatTurn[], colour: ToyColourName) {
  const result = await engine.chat({ imageHash: files.add(file), turns });
  expect(result.text).toBe('Sure, it is [SEG].');
  expect(result.segments).toHaveLength(1);
  const truth = truthMask(await decodedPixels(file), colour);
  return { iou: iou(decodeRle(result.segments[0]!.rle).data, truth), result, truthArea: truth.reduce((a, b) => a + b, 0) };
}

describe.each(['float32', 'float16'] as const)('toy pack end to end (%s)', (dtype) => {
  let engine: Engine;
  let toyDir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const pack = await makeToyPack(dtype);
    toyDir = pack.dir;
    cleanup = pack.cleanup;
    engine = await Engine.open(pack.dir, { images: files });
  });
  afterAll(async () => {
    await engine.close();
    await cleanup();
  });

  it.each(TOY_COLOUR_NAMES)('finds the %s shape (IoU >= 0.9)', async (colour) => {
    const file = await encodeImage(drawShapes(640, 480, paletteScene(640, 480)), 'png');
    const { iou: score, truthArea } = await maskIou(engine, file, [{ user: `where is the ${colour} shape?` }], colour);
    expect(truthArea).toBeGreaterThan(0.02 * 640 * 480);
    expect(score).toBeGreaterThanOrEqual(0.9);
  });

  const sizes: [string, number, number][] = [
    ['square', 512, 512],
    ['landscape', 1280, 720],
    ['portrait', 600, 900],
    ['small', 97, 61],
    ['large', 3000, 2000],
  ];
  it.each(sizes)('is accurate on a %s image (%ix%i)', async (_name, width, height) => {
    const file = await encodeImage(drawShapes(width, height, paletteScene(width, height)), 'png');
    for (const colour of ['blue', 'orange'] as const) {
      const { iou: score } = await maskIou(engine, file, [{ user: `segment the ${colour} one` }], colour);
      expect(score).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('moves the mask when a follow-up names another colour, and keeps it when none is named', async () => {
    const file = await encodeImage(drawShapes(800, 600, paletteScene(800, 600)), 'jpeg');
    const turns: ChatTurn[] = [{ user: 'segment the red square' }];
    const first = await maskIou(engine, file, turns, 'red');
    expect(first.iou).toBeGreaterThanOrEqual(0.9);
    turns[0]!.assistant = first.result.text;
    turns.push({ user: 'now the blue one' });
    const second = await maskIou(engine, file, turns, 'blue');
    expect(second.iou).toBeGreaterThanOrEqual(0.9);
    expect(second.result.cache.imageEmbeddings).toBe('hit');
    turns[1]!.assistant = second.result.text;
    turns.push({ user: 'and where is it now?' });
    const third = await maskIou(engine, file, turns, 'blue');
    expect(third.iou).toBeGreaterThanOrEqual(0.9);
  });

  it('answers follow-ups the same with prompt-lookup drafts, in fewer decoder runs', async () => {
    const drafting = await Engine.open(toyDir, { images: files, draftLength: 8 });
    try {
      const file = await encodeImage(drawShapes(400, 300, paletteScene(400, 300)), 'png');
      const turns: ChatTurn[] = [{ user: 'segment the green one' }];
      for (const next of ['and the orange one?', 'the purple one now']) {
        const [plain, drafted] = [await engine.chat({ imageHash: files.add(file), turns }), await drafting.chat({ imageHash: files.add(file), turns })];
        expect(drafted.text).toBe(plain.text);
        expect(drafted.segments.map((s) => [s.rle.counts, s.bbox])).toEqual(plain.segments.map((s) => [s.rle.counts, s.bbox]));
        if (turns.length > 1) expect(drafted.tokens.decodeRuns).toBeLessThan(plain.tokens.decodeRuns);
        turns[turns.length - 1]!.assistant = plain.text;
        turns.push({ user: next });
      }
    } finally {
      await drafting.close();
    }
  });

  it('answers a question naming no colour with an empty mask', async () => {
    const file = await encodeImage(drawShapes(320, 240, paletteScene(320, 240)), 'webp');
    const result = await engine.chat({ imageHash: files.add(file), turns: [{ user: 'what is in the picture?' }] });
    expect(result.text).toBe('Sure, it is [SEG].');
    expect(result.segments).toHaveLength(1);
    expect(result.segments[0]!.area).toBe(0);
    expect(result.segments[0]!.bbox).toEqual([0, 0, 0, 0]);
  });
});

describe('image formats and orientation', () => {
  let engine: Engine;
  let cleanup: () => Promise<void>;
  let scene: RawImage;
  beforeAll(async () => {
    const pack = await makeToyPack();
    cleanup = pack.cleanup;
    engine = await Engine.open(pack.dir, { images: files });
    scene = drawShapes(900, 500, paletteScene(900, 500));
  });
  afterAll(async () => {
    await engine.close();
    await cleanup();
  });

  const variants: [string, () => Promise<Buffer>][] = [
    ['PNG', () => encodeImage(scene, 'png')],
    ['JPEG', () => encodeImage(scene, 'jpeg')],
    ['WebP', () => encodeImage(scene, 'webp')],
    ['PNG with alpha', () => rawSharp(scene).ensureAlpha(0.5).png().toBuffer()],
    ['grayscale-converted JPEG', () => rawSharp(scene).grayscale().jpeg().toBuffer()],
    ['GIF', () => rawSharp(scene).gif().toBuffer()],
  ];
  it.each(variants)('agrees with the true region in a %s', async (_name, make) => {
    const file = await make();
    for (const colour of ['green', 'purple'] as const) {
      const { iou: score } = await maskIou(engine, file, [{ user: `the ${colour} one` }], colour);
      expect(score).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('applies the EXIF orientation of a JPEG', async () => {
    // Stored landscape, tagged "rotate 90° clockwise to display": the model must see it portrait.
    const file = await rawSharp(scene).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const result = await engine.chat({ imageHash: files.add(file), turns: [{ user: 'the yellow one' }] });
    const mask = decodeRle(result.segments[0]!.rle);
    expect([mask.width, mask.height]).toEqual([500, 900]);
    const truth = truthMask(await decodedPixels(file), 'yellow');
    expect(iou(mask.data, truth)).toBeGreaterThanOrEqual(0.9);
    const meta = await sharp(file).metadata();
    expect(meta.orientation).toBe(6);
  });
});
