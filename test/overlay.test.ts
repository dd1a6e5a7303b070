import { MessageChannel } from 'node:worker_threads';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { BinaryMask, DecodedImage } from '../src/engine/types.js';
import { contourWidth, renderMaskPng, renderOverlay } from '../src/render/overlay.js';
import { SEGMENT_COLOUR_COUNT, segmentColour } from '../src/render/palette.js';
import { randomStream } from '../models/generator/bench-random.js';

const W = 120;
const H = 80;
const BASE = [100, 150, 200] as const;

function flatImage(): DecodedImage {
  const data = new Uint8Array(W * H * 3);
  for (let i = 0; i < W * H; i++) data.set(BASE, i * 3);
  return { data, width: W, height: H };
}

function rectMask(x0: number, y0: number, x1: number, y1: number): BinaryMask {
  const data = new Uint8Array(W * H);
  for (let y = y0; y < y1; y++) data.fill(1, y * W + x0, y * W + x1);
  return { width: W, height: H, data };
}

async function rawPixels(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data, width: info.width, height: info.height };
}

const blend = (a: number, b: number) => Math.round((a + b) / 2);
const luma = ([r, g, b]: readonly number[]) => (77 * r! + 150 * g! + 29 * b! + 128) >> 8;
/** A mask's fill: the pixel's grey blended 50% with the mask colour, so the fill shows the colour's own hue. */
const fill = (pixel: readonly number[], rgb: readonly number[]) => rgb.map((c) => blend(luma(pixel), c));
const BLACK = [0, 0, 0];

describe('segmentColour', () => {
  it('pairs each colour with its square emoji, all distinct, cycling', () => {
    const colours = Array.from({ length: SEGMENT_COLOUR_COUNT }, (_, i) => segmentColour(i));
    expect(colours.map((c) => c.emoji).join('')).toBe('🟥🟦🟩🟨🟪🟧🟫');
    expect(new Set(colours.map((c) => c.hex)).size).toBe(SEGMENT_COLOUR_COUNT);
    // Twemoji's red square.
    expect(colours[0]).toEqual({ rgb: [0xdd, 0x2e, 0x44], hex: '#dd2e44', emoji: '🟥', name: 'red' });
    for (const c of colours) expect(c.hex).toBe(`#${c.rgb.map((v) => v.toString(16).padStart(2, '0')).join('')}`);
    expect(segmentColour(SEGMENT_COLOUR_COUNT)).toEqual(colours[0]);
    expect(() => segmentColour(-1)).toThrow();
  });
});

describe('renderOverlay', () => {
  it('fills inside with the grey of each pixel blended 50% with the colour, leaves the outside alone, and outlines the boundary', async () => {
    const image = flatImage();
    const red = segmentColour(0).rgb;
    const out = await renderOverlay(image, [{ mask: rectMask(20, 20, 60, 60), rgb: red }]);
    expect(out).toMatchObject({ format: 'png', contentType: 'image/png', width: W, height: H });
    const { data } = await rawPixels(out.data);
    const at = (x: number, y: number) => [...data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)];
    const t = contourWidth(W, H);
    expect(t).toBe(2);
    expect(at(40, 40)).toEqual(fill(BASE, red));
    expect(at(100, 70)).toEqual([...BASE]);
    expect(at(19, 40)).toEqual([...BASE]); // just outside: the contour is drawn inside the mask
    // On the boundary, a 1 px line contrasting with the pixel beneath (BASE is light: black), then the colour.
    expect(luma(BASE)).toBeGreaterThanOrEqual(128);
    expect(at(20, 40)).toEqual(BLACK);
    expect(at(21, 40)).toEqual(red);
    expect(at(20 + t - 1, 40)).toEqual(red);
    expect(at(20 + t, 40)).toEqual(fill(BASE, red));
    expect(at(59, 59)).toEqual(BLACK); // corner
    expect(at(58, 58)).toEqual(red);
    expect(at(40, 58)).toEqual(red);
    // The caller's image is not modified.
    expect([...image.data.subarray(0, 3)]).toEqual([...BASE]);
  });

  it('gives two segments different colours and draws later ones on top', async () => {
    const a = segmentColour(0).rgb;
    const b = segmentColour(1).rgb;
    expect(a).not.toEqual(b);
    const out = await renderOverlay(flatImage(), [
      { mask: rectMask(10, 10, 50, 50), rgb: a },
      { mask: rectMask(40, 10, 90, 50), rgb: b },
    ]);
    const { data } = await rawPixels(out.data);
    const at = (x: number, y: number) => [...data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)];
    const onlyA = at(25, 30);
    const onlyB = at(75, 30);
    expect(onlyA).toEqual(fill(BASE, a));
    expect(onlyB).toEqual(fill(BASE, b));
    expect(onlyA).not.toEqual(onlyB);
    // The overlap is filled twice, A then B.
    expect(at(45, 30)).toEqual(fill(fill(BASE, a), b));
    expect(at(11, 30)).toEqual(a);
    expect(at(88, 30)).toEqual(b);
  });

  it('draws no outline along the image border', async () => {
    const red = segmentColour(0).rgb;
    const out = await renderOverlay(flatImage(), [{ mask: rectMask(0, 0, 30, 30), rgb: red }]);
    const { data } = await rawPixels(out.data);
    const at = (x: number, y: number) => [...data.subarray((y * W + x) * 3, (y * W + x) * 3 + 3)];
    expect(at(0, 15)).toEqual(fill(BASE, red));
    expect(at(15, 0)).toEqual(fill(BASE, red));
    expect(at(29, 15)).toEqual(BLACK);
    expect(at(28, 15)).toEqual(red);
  });

  it('outlines exactly the mask pixels within the contour width of an outside pixel (the outermost one in black), for ragged masks anywhere', async () => {
    const next = randomStream(5);
    for (let trial = 0; trial < 12; trial++) {
      // Width and height vary so boxes touch every border and rows are not whole words.
      const w = 17 + Math.floor(next() * 90);
      const h = 13 + Math.floor(next() * 60);
      const data = new Uint8Array(w * h);
      const cx = next() * w;
      const cy = next() * h;
      const r = 4 + next() * Math.min(w, h);
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = Math.hypot(x - cx, y - cy) + next() * 5 < r ? 1 : 0;
      const mask = { width: w, height: h, data };
      // Light grey beneath, so the contrasting line is black.
      const image = { width: w, height: h, data: new Uint8Array(w * h * 3).fill(200) };
      const out = await renderOverlay(image, [{ mask, rgb: [255, 255, 255] }]);
      const { data: pixels } = await rawPixels(out.data);
      const t = contourWidth(w, h);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          // The definition, by brute force: a mask pixel with an outside pixel (in the image) within d.
          const nearOutside = (d: number) => {
            for (let dy = -d; dy <= d; dy++) {
              for (let dx = -d; dx <= d; dx++) {
                const [qx, qy] = [x + dx, y + dy];
                if (qx >= 0 && qy >= 0 && qx < w && qy < h && data[qy * w + qx] === 0) return true;
              }
            }
            return false;
          };
          const expected = data[y * w + x] === 0 ? 200 : nearOutside(1) ? 0 : nearOutside(t) ? 255 : blend(200, 255);
          expect(pixels[(y * w + x) * 3], `trial ${trial} (${x}, ${y}) of ${w}x${h}`).toBe(expected);
        }
      }
    }
  });

  it('draws the same with the boxes given as without them', async () => {
    const masks = [
      { mask: rectMask(10, 10, 50, 40), rgb: segmentColour(0).rgb },
      { mask: rectMask(30, 20, 100, 70), rgb: segmentColour(1).rgb },
    ];
    const boxed = masks.map((m, i) => ({ ...m, bbox: (i === 0 ? [10, 10, 40, 30] : [30, 20, 70, 50]) as [number, number, number, number] }));
    const plain = await rawPixels((await renderOverlay(flatImage(), masks)).data);
    const withBoxes = await rawPixels((await renderOverlay(flatImage(), boxed)).data);
    expect(withBoxes.data.equals(plain.data)).toBe(true);
  });

  it('starts every overlay from its own image: nothing of an earlier, larger one shows through', async () => {
    const big = { width: 300, height: 200, data: new Uint8Array(300 * 200 * 3).fill(7) };
    const full = { width: 300, height: 200, data: new Uint8Array(300 * 200).fill(1) };
    await renderOverlay(big, [{ mask: full, rgb: [250, 250, 250] }]);
    const out = await renderOverlay(flatImage(), [{ mask: rectMask(0, 0, 0, 0), rgb: [1, 2, 3] }]);
    const { data } = await rawPixels(out.data);
    expect(data.every((v, i) => v === BASE[i % 3])).toBe(true);
  });

  it('skips empty masks and refuses masks of another size', async () => {
    const out = await renderOverlay(flatImage(), [{ mask: rectMask(0, 0, 0, 0), rgb: [1, 2, 3] }]);
    const { data } = await rawPixels(out.data);
    expect(data.every((v, i) => v === BASE[i % 3])).toBe(true);
    await expect(renderOverlay(flatImage(), [{ mask: { width: 2, height: 2, data: new Uint8Array(4) }, rgb: [1, 2, 3] }])).rejects.toThrow(
      /mask/,
    );
  });

  it.each([
    ['png', 'image/png'],
    ['jpeg', 'image/jpeg'],
    ['webp', 'image/webp'],
  ] as const)('encodes %s', async (format, contentType) => {
    const out = await renderOverlay(flatImage(), [{ mask: rectMask(20, 20, 60, 60), rgb: segmentColour(2).rgb }], { format });
    expect(out).toMatchObject({ format, contentType, width: W, height: H });
    const meta = await sharp(out.data).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual([format, W, H]);
  });

  it.each(['png', 'jpeg', 'webp'] as const)('hands %s back in memory a worker can transfer to another thread, not clone', async (format) => {
    // 1920x1080 takes the JPEG strip path; a transferred buffer is detached on this side.
    const big: DecodedImage = { width: 1920, height: 1080, data: new Uint8Array(1920 * 1080 * 3).fill(90) };
    const mask = { width: 1920, height: 1080, data: new Uint8Array(1920 * 1080).fill(1, 1920 * 100, 1920 * 300) };
    for (const image of format === 'jpeg' ? [flatImage(), big] : [flatImage()]) {
      const masks = image === big ? [{ mask, rgb: segmentColour(0).rgb }] : [{ mask: rectMask(20, 20, 60, 60), rgb: segmentColour(0).rgb }];
      const out = await renderOverlay(image, masks, { format });
      const encoded = Buffer.from(out.data);
      const { port1, port2 } = new MessageChannel();
      const received = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
      port1.postMessage(out.data, [out.data.buffer as ArrayBuffer]);
      expect(out.data.length).toBe(0);
      expect(Buffer.from(await received).equals(encoded)).toBe(true);
      port1.close();
    }
  });
});

describe('renderMaskPng', () => {
  it('writes an 8-bit greyscale PNG, 255 inside and 0 outside', async () => {
    const png = await renderMaskPng(rectMask(20, 20, 60, 60));
    const meta = await sharp(png).metadata();
    expect([meta.format, meta.channels, meta.depth, meta.width, meta.height]).toEqual(['png', 1, 'uchar', W, H]);
    const { data, info } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(1);
    expect(data[30 * W + 30]).toBe(255);
    expect(data[5 * W + 5]).toBe(0);
    expect(data.every((v) => v === 0 || v === 255)).toBe(true);
  });
});
