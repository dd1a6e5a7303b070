/**
 * Every mask must be visible whatever the colour of the object under it:
 * "segment the red thing" must not come back looking like the input, and a
 * blue object under a mask must show the colour its text marker names, not a
 * mix of the two. Checked end to end (toy model, photo-like JPEG) and on the
 * renderer alone.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingTurn, Reply } from '../src/assistant/types.js';
import { photoJpeg, photoPixels } from '../src/bench/standard-images.js';
import { decodeRle, encodeRle } from '../src/engine/mask.js';
import type { DecodedImage } from '../src/engine/types.js';
import { chooseSegmentColours } from '../src/render/colour-choice.js';
import { renderOverlay } from '../src/render/overlay.js';
import { type ToyAssistant, createToyAssistant } from './helpers/assistant.js';
import { cli } from './helpers/cli.js';
import { decodedPixels } from './helpers/toy.js';

const luma = (r: number, g: number, b: number) => (77 * r + 150 * g + 29 * b + 128) >> 8;
/** The colour minus its grey: its hue and saturation as a vector. */
const chroma = ([r, g, b]: readonly number[]) => [r!, g!, b!].map((v) => v - luma(r!, g!, b!));
const distance = (a: readonly number[], b: readonly number[]) => Math.hypot(...a.map((v, i) => v - b[i]!));
const cosine = (a: readonly number[], b: readonly number[]) =>
  a.reduce((s, v, i) => s + v * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));

/** Mean colour of `pixels` (RGB or RGBA) over the mask's pixels. */
function meanOver(pixels: Uint8Array, channels: number, mask: Uint8Array): number[] {
  const sum = [0, 0, 0];
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] === 0) continue;
    for (let c = 0; c < 3; c++) sum[c]! += pixels[i * channels + c]!;
    n++;
  }
  return sum.map((s) => s / n);
}

async function overlayPixels(reply: Reply): Promise<{ data: Buffer; channels: number }> {
  const { data, info } = await sharp(reply.overlay!.data).raw().toBuffer({ resolveWithObject: true });
  return { data, channels: info.channels };
}

describe('masks on objects of their own colour, end to end', () => {
  let toy: ToyAssistant;
  let photo: Buffer;
  const turn = (key: string, text: string, withImage: boolean): IncomingTurn => ({
    surface: 'web',
    conversationKey: `web:${key}`,
    user: { id: 'alice' },
    text,
    images: withImage ? [{ kind: 'bytes', data: photo }] : [],
  });

  beforeAll(async () => {
    toy = await createToyAssistant({ limits: { perUserPerMinute: 100 } });
    photo = await photoJpeg(480, 320);
  });
  afterAll(() => toy?.close());

  it('draws the red thing in another colour, changes its hue visibly, and names that colour in the text', async () => {
    const reply = await toy.assistant.handle(turn('red', 'segment the red thing', true));
    const [segment] = reply.segments;
    expect(segment?.empty).toBe(false);
    expect(segment!.colour.name).not.toBe('red');
    expect(reply.text).toBe(`Sure, it is ${segment!.colour.emoji}.`);
    const mask = decodeRle(segment!.rle).data;
    const original = await decodedPixels(photo);
    const drawn = await overlayPixels(reply);
    const before = meanOver(original.data, 3, mask);
    const after = meanOver(drawn.data, drawn.channels, mask);
    // A hue change a glance sees (the old red-on-red fill moved it by ~10).
    expect(distance(chroma(after), chroma(before))).toBeGreaterThan(60);
  });

  it('fills a blue thing with the hue of its marker colour, not a mix of both', async () => {
    const reply = await toy.assistant.handle(turn('blue', 'segment the blue thing', true));
    const [segment] = reply.segments;
    expect(segment?.empty).toBe(false);
    expect(segment!.colour.name).not.toBe('blue');
    const drawn = await overlayPixels(reply);
    const after = meanOver(drawn.data, drawn.channels, decodeRle(segment!.rle).data);
    // Red over blue used to come out purple (cosine ~0.4 to red).
    expect(cosine(chroma(after), chroma(segment!.colour.rgb))).toBeGreaterThan(0.9);
  });

  it('does the same in the CLI overlay', async () => {
    const image = path.join(toy.dir, 'photo.jpg');
    const out = path.join(toy.dir, 'cli-overlay.png');
    await writeFile(image, photo);
    const run = await cli(['ask', '--model', path.join(toy.dir, 'toy'), '--image', image, '--out', out, '--json', 'segment the red thing']);
    expect(run.code, run.stderr).toBe(0);
    const mask = decodeRle(JSON.parse(run.stdout).segments[0].rle).data;
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    const before = meanOver((await decodedPixels(photo)).data, 3, mask);
    const after = meanOver(data, info.channels, mask);
    expect(distance(chroma(after), chroma(before))).toBeGreaterThan(60);
    // Not a paler red: a hue of its own (red over the red thing kept its direction, cosine ~1).
    expect(cosine(chroma(after), chroma(before))).toBeLessThan(0.5);
  });
});

describe('the renderer on a photo-like image', () => {
  const W = 240;
  const H = 160;
  const image: DecodedImage = { width: W, height: H, data: photoPixels(W, H) };
  // The red rectangle of photoPixels, and a mask over a bit of everything.
  const red = new Uint8Array(W * H);
  for (let y = Math.ceil(H * 0.15); y < H * 0.55; y++) red.fill(1, y * W + Math.ceil(W * 0.1), y * W + Math.ceil(W * 0.4));
  const wide = new Uint8Array(W * H).fill(1, W * 100, W * 150);

  it('gives each mask a colour far from what it covers, all different', () => {
    const masks = [red, red, wide].map((data) => ({ data, rle: encodeRle({ width: W, height: H, data }), area: data.reduce((a, v) => a + v, 0) }));
    const colours = chooseSegmentColours(image, masks);
    expect(colours[0]!.name).not.toBe('red');
    expect(new Set(colours.map((c) => c.name)).size).toBe(3);
    const under = chroma(meanOver(image.data, 3, red));
    for (const c of colours.slice(0, 2)) expect(distance(chroma(c.rgb), under)).toBeGreaterThan(90);
  });

  it('outlines a mask with a line that contrasts with each pixel beneath it', async () => {
    const out = await renderOverlay(image, [{ mask: { width: W, height: H, data: wide }, rgb: [255, 255, 255] }]);
    const { data } = await sharp(out.data).raw().toBuffer({ resolveWithObject: true });
    // Row 100 is the mask's top edge: the outermost line.
    for (let x = 0; x < W; x += 7) {
      const p = (100 * W + x) * 3;
      const beneath = luma(image.data[p]!, image.data[p + 1]!, image.data[p + 2]!);
      expect(Math.abs(luma(data[p]!, data[p + 1]!, data[p + 2]!) - beneath), `x ${x}`).toBeGreaterThan(100);
    }
  });
});
