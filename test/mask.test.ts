import { describe, expect, it } from 'vitest';
import { countsFromString, countsToString, decodeRle, encodeRle, maskRunLengths, maskStats, maskUnion, summariseMask } from '../src/engine/mask.js';
import type { BinaryMask } from '../src/engine/types.js';

/** A mask from rows of '0'/'1' characters. */
function fromRows(rows: string[]): BinaryMask {
  const height = rows.length;
  const width = rows[0]!.length;
  const data = new Uint8Array(width * height);
  rows.forEach((row, y) => [...row].forEach((ch, x) => (data[y * width + x] = ch === '1' ? 1 : 0)));
  return { width, height, data };
}

function randomMask(width: number, height: number, seed: number, density: number): BinaryMask {
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296);
  const data = new Uint8Array(width * height);
  // Runs of random length, so both short and long runs occur.
  let i = 0;
  let v = next() < density ? 1 : 0;
  while (i < data.length) {
    const run = 1 + Math.floor(next() * next() * 60);
    data.fill(v, i, Math.min(i + run, data.length));
    i += run;
    v = next() < density ? 1 : 0;
  }
  return { width, height, data };
}

/** Deep toEqual walks typed arrays element by element (seconds for megapixel masks); compare bytes instead. */
function expectSameMask(actual: BinaryMask, expected: BinaryMask): void {
  expect([actual.width, actual.height]).toEqual([expected.width, expected.height]);
  expect(Buffer.from(actual.data).equals(Buffer.from(expected.data))).toBe(true);
}

describe('COCO RLE (pycocotools-compatible)', () => {
  it('encodes a hand-checked 3 x 3 mask', () => {
    // Column-major: col0 = 0 0 0, col1 = 1 1 0, col2 = 0 1 0 -> runs [3 zeros, 2 ones, 2 zeros, 1 one, 1 zero].
    // rleToString: 3 -> '3' (48 + 3), 2 -> '2', 2 -> '2' (no delta for i <= 2);
    // i = 3: 1 - counts[1] = -1 -> 5 bits 11111 = 31, x >> 5 = -1 and the sign bit is set, so it ends:
    // 48 + 31 = 'O'; i = 4: 1 - counts[2] = -1 -> 'O'.
    const mask = fromRows(['010', '011', '000']);
    expect(maskRunLengths(mask)).toEqual([3, 2, 2, 1, 1]);
    expect(encodeRle(mask)).toEqual({ size: [3, 3], counts: '322OO' });
  });

  it('encodes multi-character numbers as pycocotools does', () => {
    // 10 rows x 20 columns: columns 10-14 set -> runs [100, 50, 50].
    // 100 = 0b11_00100: low 5 bits 4, rest 3 != 0 -> 4 | 0x20 = 36 -> 'T', then 3 -> '3'.
    // 50 = 0b1_10010: low 5 bits 18 has the sign bit 0x10, rest 1 != -1 -> 18 | 0x20 = 50 -> 'b', then 1 -> '1'.
    const rows = Array.from({ length: 10 }, () => '0'.repeat(10) + '1'.repeat(5) + '0'.repeat(5));
    const mask = fromRows(rows);
    expect(maskRunLengths(mask)).toEqual([100, 50, 50]);
    expect(encodeRle(mask).counts).toBe('T3b1b1');
    // Positive delta from i = 3: runs [1, 1, 1, 5] -> 5 - 1 = 4 -> '1114' (a 2 x 4 mask).
    expect(encodeRle(fromRows(['0011', '1111'])).counts).toBe('1114');
  });

  it('encodes empty and full masks', () => {
    // 20 has bit 0x10 set, so a zero continuation char follows: 20 | 0x20 = 52 -> 'd', then '0'.
    expect(encodeRle({ width: 5, height: 4, data: new Uint8Array(20) })).toEqual({ size: [4, 5], counts: 'd0' });
    // A full mask starts with an empty run of zeros.
    expect(encodeRle({ width: 5, height: 4, data: new Uint8Array(20).fill(1) })).toEqual({ size: [4, 5], counts: '0d0' });
    expect(decodeRle({ size: [4, 5], counts: 'd0' }).data.every((v) => v === 0)).toBe(true);
    expect(decodeRle({ size: [4, 5], counts: '0d0' }).data.every((v) => v === 1)).toBe(true);
    expect(decodeRle({ size: [0, 0], counts: '0' })).toEqual({ width: 0, height: 0, data: new Uint8Array(0) });
  });

  it('decodes the hand-checked strings back', () => {
    expect(decodeRle({ size: [3, 3], counts: '322OO' })).toEqual(fromRows(['010', '011', '000']));
    expect(countsFromString('T3b1b1')).toEqual([100, 50, 50]);
  });

  it.each([
    [1, 1, 0.5],
    [7, 3, 0.5],
    [64, 48, 0.3],
    [333, 97, 0.7],
    [900, 600, 0.5],
  ])('round-trips random %i x %i masks', (width, height, density) => {
    for (let seed = 1; seed <= 3; seed++) {
      const mask = randomMask(width, height, seed * 1000 + width, density);
      const rle = encodeRle(mask);
      expect(rle.size).toEqual([height, width]);
      expectSameMask(decodeRle(rle), mask);
    }
  });

  it('round-trips very long runs and large deltas', () => {
    const counts = [0, 3_000_000, 1, 2_999_998, 5_000_000, 17, 123_456_789];
    expect(countsFromString(countsToString(counts))).toEqual(counts);
    const big = { width: 3000, height: 2000, data: new Uint8Array(6_000_000) };
    big.data.fill(1, 4_000_000, 4_000_100);
    const rle = encodeRle(big);
    expectSameMask(decodeRle(rle), big);
  });

  it('decodes into a reused buffer, whatever it held, and refuses one too small', () => {
    const mask = { width: 7, height: 5, data: new Uint8Array(35) };
    mask.data.fill(1, 9, 20);
    const reused = new Uint8Array(50).fill(1);
    const decoded = decodeRle(encodeRle(mask), reused);
    expectSameMask(decoded, mask);
    expect(decoded.data.buffer).toBe(reused.buffer);
    expect(() => decodeRle(encodeRle(mask), new Uint8Array(34))).toThrow(/cannot hold/);
  });

  it('refuses strings that do not cover the mask', () => {
    expect(() => decodeRle({ size: [3, 3], counts: '322O' })).toThrow(/cover/);
    expect(() => decodeRle({ size: [3, 3], counts: '3 2' })).toThrow(/Invalid RLE/);
  });
});

describe('summariseMask', () => {
  it('gives what encodeRle and maskStats give, in one pass', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (const [w, h, density] of [[13, 9, 0.5], [40, 3, 0.05], [1, 17, 0.7], [8, 8, 0], [6, 5, 1]] as const) {
      const mask = { width: w, height: h, data: Uint8Array.from({ length: w * h }, () => (next() < density ? 1 : 0)) };
      expect(summariseMask(mask)).toEqual({ rle: encodeRle(mask), ...maskStats(mask) });
    }
  });
});

describe('maskStats', () => {
  it('gives area and [x, y, w, h]', () => {
    const mask = fromRows(['00000', '00110', '01100', '00000']);
    expect(maskStats(mask)).toEqual({ area: 4, bbox: [1, 1, 3, 2] });
    expect(maskStats(fromRows(['1']))).toEqual({ area: 1, bbox: [0, 0, 1, 1] });
  });

  it('gives [0, 0, 0, 0] for an empty mask', () => {
    expect(maskStats({ width: 4, height: 3, data: new Uint8Array(12) })).toEqual({ area: 0, bbox: [0, 0, 0, 0] });
  });
});

describe('maskUnion', () => {
  it('ORs masks', () => {
    const union = maskUnion([fromRows(['100', '000']), fromRows(['001', '010'])]);
    expect(union).toEqual(fromRows(['101', '010']));
  });

  it('gives an empty mask of the given size for no masks, and refuses mismatched sizes', () => {
    expect(maskUnion([], 3, 2)).toEqual({ width: 3, height: 2, data: new Uint8Array(6) });
    expect(() => maskUnion([])).toThrow();
    expect(() => maskUnion([fromRows(['1']), fromRows(['11'])])).toThrow(/match/);
  });
});
