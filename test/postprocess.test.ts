import { describe, expect, it } from 'vitest';
import { decodeRle, maskStats } from '../src/engine/mask.js';
import { maskSummariesFromLowRes } from '../src/engine/postprocess.js';
import type { BinaryMask } from '../src/engine/types.js';
import { samResizeShape } from '../src/engine/preprocess.js';
import { randomStream } from '../models/generator/bench-random.js';

/** The summaries as pixels (via their RLE), each checked against its own area and box. */
function masksFromLowRes(...args: Parameters<typeof maskSummariesFromLowRes>): BinaryMask[] {
  return maskSummariesFromLowRes(...args).map((summary) => {
    const mask = decodeRle(summary.rle);
    expect(maskStats(mask)).toEqual({ area: summary.area, bbox: summary.bbox });
    return mask;
  });
}

/** Deterministic pseudo-random numbers: the generators' seeded stream. */
const random = randomStream;

/** Plain F.interpolate(mode='bilinear', align_corners=False) on a float64 H x W map, no shortcuts. */
function bilinear(src: Float64Array, inH: number, inW: number, outH: number, outW: number): Float64Array {
  const out = new Float64Array(outH * outW);
  const index = (dst: number, inSize: number, outSize: number) => {
    const s = Math.max((dst + 0.5) * (inSize / outSize) - 0.5, 0);
    const i0 = Math.floor(s);
    const i1 = Math.min(i0 + 1, inSize - 1);
    return { i0, i1, l1: s - i0 };
  };
  for (let y = 0; y < outH; y++) {
    const { i0: y0, i1: y1, l1: ly } = index(y, inH, outH);
    for (let x = 0; x < outW; x++) {
      const { i0: x0, i1: x1, l1: lx } = index(x, inW, outW);
      const top = (1 - lx) * src[y0 * inW + x0]! + lx * src[y0 * inW + x1]!;
      const bottom = (1 - lx) * src[y1 * inW + x0]! + lx * src[y1 * inW + x1]!;
      out[y * outW + x] = (1 - ly) * top + ly * bottom;
    }
  }
  return out;
}

/** The reference: L -> S x S, crop to resized, -> original; logits (not thresholded). */
type Size = { height: number; width: number };
function reference(low: Float32Array, L: number, S: number, resized: Size, original: Size) {
  const frame = bilinear(Float64Array.from(low), L, L, S, S);
  const crop = new Float64Array(resized.height * resized.width);
  for (let y = 0; y < resized.height; y++) crop.set(frame.subarray(y * S, y * S + resized.width), y * resized.width);
  return bilinear(crop, resized.height, resized.width, original.height, original.width);
}

/** `fracW` / `fracH`: the part of the low-res map the image covers (the rest is padding). */
function randomLogits(n: number, L: number, seed: number, fracW = 1, fracH = 1, noise = 6): Float32Array {
  const next = random(seed);
  const out = new Float32Array(n * L * L);
  // Smooth blobs plus noise, so masks have both large regions and ragged edges.
  for (let m = 0; m < n; m++) {
    const cx = next() * L * fracW;
    const cy = next() * L * fracH;
    const r = (0.2 + next() * 0.3) * L * Math.min(fracW, fracH);
    for (let y = 0; y < L; y++) {
      for (let x = 0; x < L; x++) out[m * L * L + y * L + x] = (r - Math.hypot(x - cx, y - cy)) / 4 + (next() - 0.5) * noise;
    }
  }
  return out;
}

function compare(L: number, S: number, original: { width: number; height: number }, seed: number, count = 2, noise = 6) {
  const resized = samResizeShape(original.width, original.height, S);
  const low = randomLogits(count, L, seed, resized.width / S, resized.height / S, noise);
  const masks = masksFromLowRes(low, count, L, S, resized, original);
  expect(masks).toHaveLength(count);
  for (let m = 0; m < count; m++) {
    const ref = reference(low.subarray(m * L * L, (m + 1) * L * L), L, S, resized, original);
    const mask = masks[m]!;
    expect([mask.width, mask.height, mask.data.length]).toEqual([original.width, original.height, original.width * original.height]);
    let differ = 0;
    let ones = 0;
    for (let i = 0; i < ref.length; i++) {
      const expected = ref[i]! > 0 ? 1 : 0;
      ones += expected;
      if (mask.data[i] !== expected && Math.abs(ref[i]!) > 1e-6) differ++;
    }
    expect(differ).toBe(0);
    // The test means something only if both classes occur.
    expect(ones).toBeGreaterThan(0);
    expect(ones).toBeLessThan(ref.length);
  }
}

describe('masksFromLowRes', () => {
  it.each([
    ['landscape 97 x 61', 97, 61],
    ['portrait 61 x 97', 61, 97],
    ['tiny 5 x 3', 5, 3],
    ['one pixel wide 1 x 40', 1, 40],
    ['larger than the SAM frame 1500 x 1100', 1500, 1100],
    ['exactly the SAM frame 1024 x 1024', 1024, 1024],
    ['odd 333 x 1021', 333, 1021],
  ])('equals the float64 two-step bilinear reference: %s', (_name, width, height) => {
    compare(256, 1024, { width, height }, width * 7919 + height);
  });

  // Without noise most pixels lie in blocks whose low-res logits share a sign,
  // which are decided without computing them: those must agree too.
  it.each([
    ['1920 x 1080', 1920, 1080],
    ['portrait 1080 x 1920', 1080, 1920],
    ['smaller than the low-res map 200 x 150', 200, 150],
  ])('equals the reference for smooth masks with large solid regions: %s', (_name, width, height) => {
    compare(256, 1024, { width, height }, width + height, 2, 0);
  });

  it('decides solid blocks by sign alone, however small the logits', () => {
    const L = 16;
    const low = new Float32Array(L * L);
    // Columns 0-7 barely positive, 8-15 barely negative; rows 12-15 exactly zero.
    for (let y = 0; y < 12; y++) for (let x = 0; x < L; x++) low[y * L + x] = x < 8 ? 1e-30 : -1e-30;
    const [mask] = masksFromLowRes(low, 1, L, 64, { width: 64, height: 64 }, { width: 64, height: 64 });
    const at = (x: number, y: number) => mask!.data[y * 64 + x];
    // Output pixel p reads low-res (p + 0.5) / 4 - 0.5 and its neighbour.
    expect(at(0, 0)).toBe(1);
    expect(at(25, 40)).toBe(1);
    expect(at(63, 0)).toBe(0);
    expect(at(40, 40)).toBe(0);
    // The zero rows and everything next to them: exactly 0, never > 0.
    for (let x = 0; x < 64; x++) expect(at(x, 60)).toBe(0);
    expect(masksFromLowRes(new Float32Array(L * L), 1, L, 64, { width: 64, height: 64 }, { width: 99, height: 99 })[0]!.data.every((v) => v === 0)).toBe(true);
  });

  it('works with other frame sizes (toy packs)', () => {
    compare(16, 64, { width: 50, height: 30 }, 3);
    compare(16, 64, { width: 30, height: 50 }, 4, 3);
  });

  it('thresholds at > 0 and returns nothing for zero masks', () => {
    const L = 8;
    const low = new Float32Array(L * L).fill(-1);
    low[3 * L + 3] = 5;
    const [mask] = masksFromLowRes(low, 1, L, 32, { width: 32, height: 32 }, { width: 32, height: 32 });
    expect(mask!.data.some((v) => v === 1)).toBe(true);
    expect(mask!.data.every((v) => v === 0 || v === 1)).toBe(true);
    expect(masksFromLowRes(new Float32Array(0), 0, L, 32, { width: 32, height: 32 }, { width: 10, height: 10 })).toEqual([]);
  });

  it('refuses a too-short logits buffer', () => {
    expect(() => masksFromLowRes(new Float32Array(10), 1, 8, 32, { width: 32, height: 32 }, { width: 4, height: 4 })).toThrow(/expected/);
  });

  it('equals the reference for a large photo, then a small one through the same scratch rows', () => {
    compare(256, 1024, { width: 3000, height: 2000 }, 11, 1);
    compare(256, 1024, { width: 40, height: 90 }, 12, 1);
  });
});
