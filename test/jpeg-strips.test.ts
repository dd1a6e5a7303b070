import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodeJpeg, stripRows } from '../src/render/jpeg-strips.js';

/** A photo-like RGB image: gradients and noise, so every 8x8 block has detail. */
function photoPixels(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  let seed = 12345;
  for (let i = 0; i < width * height; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const x = i % width;
    const y = Math.floor(i / width);
    data[i * 3] = (x * 255) / width + (seed & 15);
    data[i * 3 + 1] = (y * 255) / height + ((seed >> 8) & 15);
    data[i * 3 + 2] = ((x + y) * 7) & 255;
  }
  return data;
}

async function decode(jpeg: Buffer) {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** Whether a JPEG declares a restart interval (DRI, 0xFFDD): only a joined strip encode does. */
function hasRestartInterval(jpeg: Buffer): boolean {
  for (let at = 2; at + 4 <= jpeg.length && jpeg[at] === 0xff; at += 2 + jpeg.readUInt16BE(at + 2)) {
    if (jpeg[at + 1] === 0xdd) return true;
    if (jpeg[at + 1] === 0xda) return false; // start of scan: the headers are over
  }
  return false;
}

describe('JPEG encoded in strips', () => {
  // Strips are encoded as if on 4 cores, whatever this machine has, so the join is what is tested.
  it.each([
    [1920, 1080, true],
    [1001, 777, true],
    [640, 4100, true],
    [300, 200, false],
  ])('decodes to exactly the pixels of a one-piece encode (%i x %i, in strips: %s)', async (width, height, strips) => {
    const pixels = photoPixels(width, height);
    const joined = await encodeJpeg(pixels, width, height, 85, 4);
    expect(hasRestartInterval(joined)).toBe(strips);
    const whole = await sharp(pixels, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 85, mozjpeg: false, optimiseCoding: false, chromaSubsampling: '4:2:0' })
      .toBuffer();
    const [a, b] = await Promise.all([decode(joined), decode(whole)]);
    expect([a.width, a.height]).toEqual([width, height]);
    expect(a.data.equals(b.data)).toBe(true);
    expect((await sharp(joined).metadata()).format).toBe('jpeg');
  });

  it('cuts whole MCU rows, keeps the restart interval in 16 bits, and leaves small images whole', () => {
    expect(stripRows(1920, 1080, 2)).toBe(544);
    expect(stripRows(1920, 1080, 16)).toBe(272);
    expect(stripRows(300, 200, 2)).toBe(200);
    const wide = stripRows(8000, 5000, 2);
    expect(wide % 16).toBe(0);
    expect(Math.ceil(8000 / 16) * (wide / 16)).toBeLessThanOrEqual(0xffff);
  });
});
