import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PackManifest } from '../src/engine/manifest.js';
import { clipPixelValues, clipResizeShape, samPixelValues, samResizeShape } from '../src/engine/preprocess.js';
import { resizeRgb, resizeRgbScalar, type ResampleFilter } from '../src/engine/resample.js';
import { randomStream } from '../models/generator/bench-random.js';
import type { DecodedImage } from '../src/engine/types.js';

const CLIP: PackManifest['clip'] = {
  size: 224,
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
  resample: 'bicubic',
};
const SAM: PackManifest['sam'] = { size: 1024, mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] };

/** Four flat quadrants: top-left, top-right, bottom-left, bottom-right. */
const COLOURS = [
  [200, 30, 90],
  [10, 240, 128],
  [255, 0, 17],
  [64, 128, 250],
] as const;

function quadrants(width: number, height: number): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const q = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1);
      data.set(COLOURS[q]!, (y * width + x) * 3);
    }
  }
  return { data, width, height };
}

/** The pattern the Pillow goldens below were made from: high-frequency, so rounding and clipping matter. */
function pattern(width: number, height: number): DecodedImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([(x * 37 + y * 11) % 256, (x * x + 3 * y) % 256, (x * y * 5 + 19) % 256], (y * width + x) * 3);
  }
  return { data, width, height };
}

describe('resize shapes', () => {
  it('follows CLIPImageProcessor: short side to 224, long side int(224 * long / short)', () => {
    // 224 * 97 / 61 = 356.19... -> 356
    expect(clipResizeShape(97, 61, 224)).toEqual({ width: 356, height: 224 });
    expect(clipResizeShape(61, 97, 224)).toEqual({ width: 224, height: 356 });
    // 224 * 300 / 180 = 373.33 -> 373 (truncated, not rounded)
    expect(clipResizeShape(300, 180, 224)).toEqual({ width: 373, height: 224 });
    expect(clipResizeShape(500, 500, 224)).toEqual({ width: 224, height: 224 });
  });

  it('follows ResizeLongestSide: long side to 1024, short side int(short * scale + 0.5)', () => {
    // scale = 1024 / 97 = 10.5567...; 61 * scale = 643.96 -> 644
    expect(samResizeShape(97, 61, 1024)).toEqual({ width: 1024, height: 644 });
    expect(samResizeShape(61, 97, 1024)).toEqual({ width: 644, height: 1024 });
    // 180 * 1024 / 300 = 614.4 -> 614
    expect(samResizeShape(300, 180, 1024)).toEqual({ width: 1024, height: 614 });
    expect(samResizeShape(2000, 1000, 1024)).toEqual({ width: 1024, height: 512 });
  });
});

describe('resizeRgb matches Pillow bit for bit', () => {
  // sha256 of numpy.asarray(Image.fromarray(pattern).resize((ow, oh), BICUBIC | BILINEAR)), Pillow 9.4.
  const goldens: [number, number, number, number, ResampleFilter, string, number[]][] = [
    [31, 23, 13, 9, 'bicubic', '7acebee9f94e122dbcea52cb64aeb4e5adb177cab093844a76cdf0c61488a24a', [36, 3, 22, 125, 11, 31]],
    [31, 23, 50, 40, 'bicubic', '83eb430eef2cf898223cf3c0626cc20e527ed5aa5bc6d84078c89427e60e5650', [0, 0, 19, 11, 0, 19]],
    [31, 23, 31, 12, 'bicubic', '8cbd5f566f532f6b3f844fed372aa9752b0e4af2f684aeb3050065699ff7a019', [6, 2, 19, 43, 3, 22]],
    [31, 23, 13, 23, 'bicubic', '2096e0a2589c99b261fcb77856d6ebe14d4806ad450ef49f7b2b3540728b18b1', [27, 1, 19, 116, 9, 19]],
    [31, 23, 13, 9, 'bilinear', 'decf3f756b9e2786eca2e7018efe23319427ba1e69435a32a27792c79fa09098', [45, 4, 24, 125, 13, 35]],
    [31, 23, 50, 40, 'bilinear', '45e76767d0981ba8ac2fa5461584cbbdef6c58356a1ab5bf34157c82a5d3736b', [0, 0, 19, 16, 0, 19]],
    [31, 23, 7, 41, 'bilinear', '2c626cce9dc8e607ae68f135c83ff4fdc9ee43b97aae6b8f0a4a08af5e15bf42', [79, 7, 19, 120, 41, 19]],
    [300, 200, 24, 16, 'bicubic', '7231bcbe3d0bcd91c08f51bbfbbcca8dfc531efdd2eaf41af641578fd749a628', [127, 73, 104, 127, 134, 123]],
    [300, 200, 24, 16, 'bilinear', 'b36b69f9016a7cdc27437717b1072a0bf465aef6223b73d2444dac3934fc23ec', [127, 79, 107, 127, 130, 122]],
    [640, 480, 1024, 768, 'bilinear', 'ccb8c9c35dacfbd8a9cded90797d19b2a726ee5c8290e93d1eb663a97ef6d35c', [0, 0, 19, 16, 0, 19]],
    // Inputs narrower than the filter window.
    [2, 1, 5, 3, 'bicubic', '929468c84c809c4fa41344d70f3e9b277d7834dc811343fa945ace85cb55d28c', [0, 0, 19, 2, 0, 19]],
    [1, 3, 4, 7, 'bilinear', '8fd7f0409e7a62e550120ccad8578320b7a7355b50931ff42d7d4c98d1d109b7', [0, 0, 19, 0, 0, 19]],
    [3, 3, 1, 1, 'bicubic', 'a8eabc201fcbdbe592da7b5abeabdaef23284168f252f3c4c517552279b0c6c5', [48, 5, 24]],
    [3, 5, 3, 11, 'bicubic', 'e6e20b7406aff9d5085cc31f4f047f4734522c82ef74e04c9f4d2ab862ba628b', [0, 0, 19, 36, 1, 19]],
  ];
  it.each(goldens)('%i x %i -> %i x %i %s', (w, h, ow, oh, filter, sha, head) => {
    // resizeRgb runs the WebAssembly SIMD kernels; the scalar passes are the fallback without them.
    for (const resize of [resizeRgb, resizeRgbScalar]) {
      const out = resize(pattern(w, h), ow, oh, filter);
      expect([...out.subarray(0, 6)]).toEqual(head);
      expect(createHash('sha256').update(out).digest('hex')).toBe(sha);
    }
  });

  it('gives the same bytes from the WebAssembly kernels as from the scalar passes: random images, sizes and windows', () => {
    const next = randomStream(17);
    const int = (n: number) => 1 + Math.floor(next() * n);
    for (let t = 0; t < 120; t++) {
      const width = int(260);
      const height = int(180);
      const image = { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(next() * 256)) };
      // Down, up, and one axis unchanged; bilinear and bicubic; a random window of the result.
      const [outWidth, outHeight] = [
        [int(400), int(300)],
        [width, int(300)],
        [int(400), height],
      ][t % 3]!;
      const filter: ResampleFilter = t % 2 ? 'bicubic' : 'bilinear';
      const left = Math.floor(next() * outWidth);
      const top = Math.floor(next() * outHeight);
      const window = { left, top, width: int(outWidth - left), height: int(outHeight - top) };
      const simd = resizeRgb(image, outWidth, outHeight, filter, window);
      const scalar = resizeRgbScalar(image, outWidth, outHeight, filter, window);
      expect(Buffer.from(simd).equals(Buffer.from(scalar)), `${width}x${height} -> ${outWidth}x${outHeight} ${filter}`).toBe(true);
    }
  });

  it('gives the same bytes into a given buffer full of garbage, calls of every size in turn', () => {
    const into = new Uint8Array(1024 * 768 * 3 + 7).fill(0xa5);
    for (const [w, h, ow, oh, filter, sha] of goldens) {
      const out = resizeRgb(pattern(w, h), ow, oh, filter, undefined, into);
      expect(out.buffer).toBe(into.buffer);
      expect(createHash('sha256').update(out).digest('hex')).toBe(sha);
    }
  });

  it('gives the same bytes from the WebAssembly kernels for an image wider than their source chunk', () => {
    // 4000 px rows are 12 KB: the kernels take the source ~87 rows at a time.
    const next = randomStream(23);
    const image = { width: 4000, height: 300, data: Uint8Array.from({ length: 4000 * 300 * 3 }, () => Math.floor(next() * 256)) };
    for (const filter of ['bilinear', 'bicubic'] as const) {
      const simd = resizeRgb(image, 1024, 77, filter);
      expect(Buffer.from(simd).equals(Buffer.from(resizeRgbScalar(image, 1024, 77, filter)))).toBe(true);
    }
  });

  it('computes a window equal to the same region of the full result', () => {
    const image = pattern(97, 61);
    const full = resizeRgb(image, 356, 224, 'bicubic');
    const window = resizeRgb(image, 356, 224, 'bicubic', { left: 66, top: 0, width: 224, height: 224 });
    for (let y = 0; y < 224; y++) {
      const a = full.subarray((y * 356 + 66) * 3, (y * 356 + 66 + 224) * 3);
      expect(Buffer.from(window.subarray(y * 224 * 3, (y + 1) * 224 * 3)).equals(Buffer.from(a))).toBe(true);
    }
  });
});

describe('clipPixelValues', () => {
  it('normalises (v / 255 - mean) / std into CHW planes, centre-cropped', async () => {
    // 300 x 180 -> 373 x 224, crop left = floor((373 - 224) / 2) = 74: crop x 20 is source x ~75 (left
    // half), crop x 200 is source x ~220 (right half); crop y 20 / 200 are source y ~16 / ~161.
    const out = await clipPixelValues(quadrants(300, 180), CLIP);
    expect(out.length).toBe(3 * 224 * 224);
    const samples: [number, number, number][] = [
      [20, 20, 0],
      [200, 20, 1],
      [20, 200, 2],
      [200, 200, 3],
    ];
    for (const [x, y, q] of samples) {
      for (let c = 0; c < 3; c++) {
        const expected = (COLOURS[q]![c]! / 255 - CLIP.mean[c]!) / CLIP.std[c]!;
        expect(out[c * 224 * 224 + y * 224 + x]).toBeCloseTo(expected, 5);
      }
    }
  });

  it('crops the centre of a portrait image', async () => {
    // 180 x 300 -> 224 x 373, crop top = 74; crop row 0 is source y ~59 (top half), row 223 source y ~ 239.
    const out = await clipPixelValues(quadrants(180, 300), CLIP);
    const at = (c: number, x: number, y: number) => out[c * 224 * 224 + y * 224 + x]!;
    expect(at(0, 10, 5)).toBeCloseTo((200 / 255 - CLIP.mean[0]) / CLIP.std[0], 5);
    expect(at(2, 210, 218)).toBeCloseTo((250 / 255 - CLIP.mean[2]) / CLIP.std[2], 5);
  });
});

describe('samPixelValues', () => {
  it('normalises (v - mean) / std on the 0-255 scale and pads bottom with zeros (landscape)', async () => {
    const { data, resized } = await samPixelValues(quadrants(300, 180), SAM);
    expect(resized).toEqual({ width: 1024, height: 614 });
    expect(data.length).toBe(3 * 1024 * 1024);
    const plane = 1024 * 1024;
    const samples: [number, number, number][] = [
      [100, 100, 0],
      [900, 100, 1],
      [100, 500, 2],
      [900, 500, 3],
    ];
    for (const [x, y, q] of samples) {
      for (let c = 0; c < 3; c++) {
        const expected = (COLOURS[q]![c]! - SAM.mean[c]!) / SAM.std[c]!;
        expect(data[c * plane + y * 1024 + x]).toBeCloseTo(expected, 5);
      }
    }
    for (let c = 0; c < 3; c++) {
      const pad = data.subarray(c * plane + 614 * 1024, (c + 1) * plane);
      expect(pad.every((v) => v === 0)).toBe(true);
      // The last real row is not padding.
      expect(data[c * plane + 613 * 1024 + 10]).not.toBe(0);
    }
  });

  it('pads the right-hand columns of a portrait image with zeros', async () => {
    const { data, resized } = await samPixelValues(quadrants(180, 300), SAM);
    expect(resized).toEqual({ width: 614, height: 1024 });
    const plane = 1024 * 1024;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 1024; y += 7) {
        const row = data.subarray(c * plane + y * 1024 + 614, c * plane + (y + 1) * 1024);
        expect(row.every((v) => v === 0)).toBe(true);
        expect(data[c * plane + y * 1024 + 613]).not.toBe(0);
      }
    }
    expect(data[2 * plane + 900 * 1024 + 500]).toBeCloseTo((250 - SAM.mean[2]) / SAM.std[2], 5);
  });

  it('upscales small images (97 x 61 -> 1024 x 644)', async () => {
    const { data, resized } = await samPixelValues(quadrants(97, 61), SAM);
    expect(resized).toEqual({ width: 1024, height: 644 });
    expect(data[10 * 1024 + 10]).toBeCloseTo((200 - SAM.mean[0]) / SAM.std[0], 5);
    expect(data[643 * 1024 + 1023]).toBeCloseTo((64 - SAM.mean[0]) / SAM.std[0], 5);
    expect(data[644 * 1024]).toBe(0);
  });
});

describe('CLIP pixel values in parts', () => {
  it('are bit for bit the same whether computed whole or as row bands on two threads', async () => {
    const { PixelWorkers } = await import('../src/engine/pixel-workers.js');
    const { clipPixelValues } = await import('../src/engine/preprocess.js');
    const clip = { size: 224, mean: [0.48145466, 0.4578275, 0.40821073] as [number, number, number], std: [0.26862954, 0.26130258, 0.27577711] as [number, number, number], resample: 'bicubic' as const };
    const pool = new PixelWorkers(2);
    try {
      for (const [width, height] of [[701, 433], [300, 900], [100, 90]] as const) {
        const data = new Uint8Array(width * height * 3);
        for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
        const image = { width, height, data };
        const whole = await clipPixelValues(image, clip);
        for (const parts of [2, 3]) {
          const split = await pool.clip(image, clip, parts);
          expect(Buffer.from(split.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
        }
      }
    } finally {
      await pool.close();
    }
  });
});

describe('SAM pixel values in parts', () => {
  it('are bit for bit the same whether computed whole or as row bands on two threads, into a reused buffer', async () => {
    const { PixelWorkers } = await import('../src/engine/pixel-workers.js');
    const { samPixelValues } = await import('../src/engine/preprocess.js');
    const width = 701;
    const height = 433;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const image = { width, height, data };
    const sam = { size: 1024, mean: [123.675, 116.28, 103.53] as [number, number, number], std: [58.395, 57.12, 57.375] as [number, number, number] };
    const whole = (await samPixelValues(image, sam)).data;
    const pool = new PixelWorkers(2);
    try {
      // A target full of garbage, as a reused buffer would be: padding must come out zero.
      const target = new Float32Array(3 * 1024 * 1024).fill(Number.NaN);
      for (const parts of [2, 3]) {
        const split = await pool.sam(image, sam, target, parts);
        // Compared as bytes (a deep equal of 3M floats would take minutes).
        expect(Buffer.from(split.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
      }
      // Then through the same (reused) buffers: a portrait image (padding columns
      // where the last one had pixels), then a wide one (padding rows likewise).
      for (const [w, h] of [[200, 300], [300, 120]] as const) {
        const next = { width: w, height: h, data: data.subarray(0, w * h * 3) };
        const expected = (await samPixelValues(next, sam)).data;
        const split = await pool.sam(next, sam, target, 2);
        expect(Buffer.from(split.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      }
    } finally {
      await pool.close();
    }
  });
});
