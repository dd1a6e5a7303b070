import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, imageInfo } from '../src/engine/image.js';
import { UserInputError } from '../src/errors.js';

const LIMITS = { maxPixels: 10_000_000 };

/** A w x h RGB image whose pixel (x, y) is [x, y, 7] (values below 256). */
function gradient(w: number, h: number): Buffer {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) buf.set([x, y, 7], (y * w + x) * 3);
  return buf;
}

const raw = (data: Buffer, width: number, height: number, channels: 1 | 2 | 3 | 4) => sharp(data, { raw: { width, height, channels } });

async function expectCode(promise: Promise<unknown>, code: string): Promise<UserInputError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserInputError);
  expect((error as UserInputError).code).toBe(code);
  return error as UserInputError;
}

describe('decodeImage', () => {
  it.each([
    ['png', (s: Sharp) => s.png()],
    ['jpeg', (s: Sharp) => s.jpeg({ quality: 100 })],
    ['webp', (s: Sharp) => s.webp({ lossless: true })],
    ['gif', (s: Sharp) => s.gif()],
    ['tiff', (s: Sharp) => s.tiff()],
  ])('decodes %s to RGB', async (format, encode) => {
    const file = await encode(raw(Buffer.alloc(40 * 30 * 3, 200), 40, 30, 3)).toBuffer();
    const info = await imageInfo(file, LIMITS);
    expect(info).toEqual({ format, width: 40, height: 30 });
    const image = await decodeImage(file, LIMITS);
    expect([image.width, image.height, image.data.length]).toEqual([40, 30, 40 * 30 * 3]);
    for (const v of image.data.subarray(0, 30)) expect(Math.abs(v - 200)).toBeLessThanOrEqual(2);
  });

  it('keeps exact pixel values of a PNG', async () => {
    const file = await raw(gradient(50, 40), 50, 40, 3).png().toBuffer();
    const image = await decodeImage(file, LIMITS);
    expect(Buffer.from(image.data).equals(gradient(50, 40))).toBe(true);
  });

  it('expands greyscale and grey+alpha to RGB, and drops alpha without flattening', async () => {
    const grey = await raw(Buffer.from([77, 0, 128, 255]), 2, 2, 1).toColourspace('b-w').png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    expect([...(await decodeImage(grey, LIMITS)).data]).toEqual([77, 77, 77, 0, 0, 0, 128, 128, 128, 255, 255, 255]);

    // Alpha 0 must not turn the pixel black or white: the reference ignores alpha.
    const greyAlpha = await raw(Buffer.from([10, 255, 20, 0, 30, 128, 40, 255]), 2, 2, 2).toColourspace('b-w').png().toBuffer();
    expect((await sharp(greyAlpha).metadata()).channels).toBe(2);
    expect([...(await decodeImage(greyAlpha, LIMITS)).data]).toEqual([10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]);

    const rgba = await raw(Buffer.from([10, 20, 30, 0, 40, 50, 60, 255, 70, 80, 90, 128, 1, 2, 3, 4]), 2, 2, 4).png().toBuffer();
    expect([...(await decodeImage(rgba, LIMITS)).data]).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 1, 2, 3]);
  });

  it('reduces 16-bit PNGs to 8 bits by the high byte, like libpng strip_16', async () => {
    const u16 = new Uint16Array([0x80ff, 0x00ff, 0xffff, 0x7f80]);
    const file = await sharp(u16, { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    expect((await sharp(file).metadata()).depth).toBe('ushort');
    expect([...(await decodeImage(file, LIMITS)).data]).toEqual([128, 128, 128, 0, 0, 0, 255, 255, 255, 127, 127, 127]);
  });

  it('decodes palette PNGs and CMYK JPEGs to 3 channels', async () => {
    const pal = await raw(Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]), 2, 2, 3).png({ palette: true, dither: 0 }).toBuffer();
    expect([...(await decodeImage(pal, LIMITS)).data]).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]);
    const cmyk = await raw(Buffer.alloc(8 * 8 * 3, 128), 8, 8, 3).toColourspace('cmyk').jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).channels).toBe(4);
    const image = await decodeImage(cmyk, LIMITS);
    expect(image.data.length).toBe(8 * 8 * 3);
  });

  it('takes the first frame of an animated GIF', async () => {
    const frames = Buffer.concat([Buffer.alloc(8 * 8 * 4, 200), Buffer.alloc(8 * 8 * 4, 50)]);
    const gif = await sharp(frames, { raw: { width: 8, height: 16, channels: 4, pageHeight: 8 } }).gif().toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(2);
    const image = await decodeImage(gif, LIMITS);
    expect([image.width, image.height]).toEqual([8, 8]);
    expect(image.data[0]).toBe(200);
  });

  it('applies EXIF orientation 6 (rotate 90 degrees clockwise)', async () => {
    // 60 x 40, white marker block at the top-left corner.
    const pixels = Buffer.alloc(60 * 40 * 3, 0);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) pixels.fill(255, (y * 60 + x) * 3, (y * 60 + x) * 3 + 3);
    const jpeg = await raw(pixels, 60, 40, 3).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    expect(await imageInfo(jpeg, LIMITS)).toEqual({ format: 'jpeg', width: 40, height: 60 });
    const image = await decodeImage(jpeg, LIMITS);
    expect([image.width, image.height]).toEqual([40, 60]);
    // Rotating clockwise moves the top-left corner to the top-right.
    const at = (x: number, y: number) => image.data[(y * image.width + x) * 3]!;
    expect(at(36, 3)).toBeGreaterThan(200);
    expect(at(3, 3)).toBeLessThan(50);
    expect(at(36, 56)).toBeLessThan(50);
  });

  it('refuses an empty buffer', async () => {
    await expectCode(decodeImage(new Uint8Array(0), LIMITS), 'image_empty');
  });

  it.each([
    ['plain text', 'hello, this is not an image\n', 'a text file'],
    ['HTML', '<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>', 'an HTML page'],
    ['SVG', '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>', 'an SVG drawing'],
    ['PDF', '%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF', 'a PDF document'],
  ])('refuses %s, naming it', async (_name, content, named) => {
    const error = await expectCode(decodeImage(Buffer.from(content), LIMITS), 'image_unsupported');
    expect(error.message).toContain(named);
    await expectCode(imageInfo(Buffer.from(content), LIMITS), 'image_unsupported');
  });

  it('refuses a bare SVG that sharp itself could render', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>');
    expect((await sharp(svg).metadata()).format).toBe('svg');
    const error = await expectCode(decodeImage(svg, LIMITS), 'image_unsupported');
    expect(error.message).toContain('SVG');
  });

  it('refuses truncated JPEG and PNG files as corrupt', async () => {
    const pixels = gradient(64, 48);
    const jpeg = await raw(pixels, 64, 48, 3).jpeg().toBuffer();
    const png = await raw(pixels, 64, 48, 3).png().toBuffer();
    await expectCode(decodeImage(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)), LIMITS), 'image_corrupt');
    await expectCode(decodeImage(jpeg.subarray(0, 20), LIMITS), 'image_corrupt');
    await expectCode(decodeImage(png.subarray(0, png.length - 30), LIMITS), 'image_corrupt');
    await expectCode(decodeImage(png.subarray(0, Math.floor(png.length / 2)), LIMITS), 'image_corrupt');
  });

  it('refuses an image over the pixel limit before decoding, giving both numbers', async () => {
    const png = await raw(Buffer.alloc(120 * 100 * 3), 120, 100, 3).png().toBuffer();
    const error = await expectCode(decodeImage(png, { maxPixels: 10_000 }), 'image_too_many_pixels');
    expect(error.message).toContain('12,000');
    expect(error.message).toContain('10,000');
    await expectCode(imageInfo(png, { maxPixels: 10_000 }), 'image_too_many_pixels');
    await expect(decodeImage(png, { maxPixels: 12_000 })).resolves.toMatchObject({ width: 120, height: 100 });
  });
});
