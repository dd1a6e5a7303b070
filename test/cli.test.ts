import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';
import { decodeRle } from '../src/engine/mask.js';
import type { RleMask } from '../src/engine/types.js';
import { cli } from './helpers/cli.js';
import { decodedPixels, drawShapes, encodeImage, iou, truthMask } from './helpers/toy.js';

let dir: string;
let pack: string;
let photo: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-cli-'));
  pack = path.join(dir, 'toy');
  const made = await cli(['models', 'toy', '--out', pack]);
  expect(made.code).toBe(0);
  photo = path.join(dir, 'photo.jpg');
  await writeFile(
    photo,
    await encodeImage(
      drawShapes(640, 360, [
        { colour: 'red', kind: 'rect', x: 40, y: 40, w: 200, h: 120 },
        { colour: 'blue', kind: 'circle', x: 380, y: 150, w: 180, h: 180 },
      ]),
      'jpeg',
    ),
  );
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('lisa-bot ask', () => {
  it('prints the answer, writes the overlay and the mask', async () => {
    const overlay = path.join(dir, 'overlay.png');
    const maskFile = path.join(dir, 'mask.png');
    const result = await cli(['ask', '--model', pack, '--image', photo, '--out', overlay, '--mask-out', maskFile, 'segment the red car']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.split('\n')[0]).toBe('Sure, it is [mask 1].');
    const meta = await sharp(overlay).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 640, 360]);
    expect((await sharp(maskFile).metadata()).channels).toBe(1);
    const mask = await sharp(maskFile).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    const truth = truthMask(await decodedPixels(await readFile(photo)), 'red');
    expect(iou(mask.data.map((v) => (v === 255 ? 1 : 0)), truth)).toBeGreaterThanOrEqual(0.9);
  });

  it('prints JSON with RLE masks and every stage timing', async () => {
    const result = await cli(['ask', '--model', pack, '--image', photo, '--json', 'and', 'the', 'blue', 'one']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { text: string; ids: number[]; segments: { area: number; bbox: number[]; score: number; rle: RleMask }[]; timings: Record<string, number> };
    expect(json.text).toBe('Sure, it is [SEG].');
    // The generated ids, EOS excluded: "sure , it is [SEG] ." with [SEG] fifth.
    const added = (JSON.parse(await readFile(path.join(pack, 'tokenizer.json'), 'utf8')) as { added_tokens: { id: number; content: string }[] }).added_tokens;
    expect(json.ids).toHaveLength(6);
    expect(json.ids[4]).toBe(added.find((t) => t.content === '[SEG]')!.id);
    expect(json.segments).toHaveLength(1);
    const mask = decodeRle(json.segments[0]!.rle);
    expect(mask.data.reduce((a, b) => a + b, 0)).toBe(json.segments[0]!.area);
    const truth = truthMask(await decodedPixels(await readFile(photo)), 'blue');
    expect(iou(mask.data, truth)).toBeGreaterThanOrEqual(0.9);
    // Every stage the engine times, asked of the engine rather than listed here.
    const images = new ImagesInMemory();
    const engine = await Engine.open(pack, { images });
    const timed = await engine.chat({ imageHash: images.add(await readFile(photo)), turns: [{ user: 'the blue one' }] }).finally(() => engine.close());
    expect(Object.keys(json.timings).sort()).toEqual(Object.keys(timed.timings).sort());
    for (const ms of Object.values(json.timings)) expect(ms).toEqual(expect.any(Number));
  });

  it('writes a JPEG overlay when asked for .jpg', async () => {
    const overlay = path.join(dir, 'overlay.jpg');
    expect((await cli(['ask', '--model', pack, '--image', photo, '--out', overlay, 'red'])).code).toBe(0);
    expect((await sharp(overlay).metadata()).format).toBe('jpeg');
  });
});

describe('bad input exits 2 with one line on stderr', () => {
  const cases: [string, () => Promise<string[]>, RegExp][] = [
    ['a missing image file', async () => ['--image', path.join(dir, 'nope.jpg')], /not found/],
    ['an empty file', async () => ['--image', await file('empty.png', '')], /empty/i],
    ['a text file', async () => ['--image', await file('notes.jpg', 'just some words\n')], /not an image|not a supported/i],
    ['an HTML page', async () => ['--image', await file('page.png', '<!doctype html><html><body>login</body></html>')], /HTML/],
    ['an SVG drawing', async () => ['--image', await file('drawing.png', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')], /SVG/],
    ['a truncated JPEG', async () => ['--image', await file('cut.jpg', (await readFile(photo)).subarray(0, 2000))], /truncated|corrupt|damaged|incomplete/i],
    ['too many pixels', async () => ['--image', photo, '--max-pixels', '1000'], /pixels/],
    ['an empty question', async () => ['--image', photo, '   '], /question is empty/],
    ['a question longer than the context', async () => ['--image', photo, 'red '.repeat(1100)], /too long/],
    ['a missing model pack', async () => ['--image', photo, '--model', path.join(dir, 'no-pack')], /No model pack/],
  ];

  async function file(name: string, content: string | Uint8Array): Promise<string> {
    const target = path.join(dir, name);
    await writeFile(target, content);
    return target;
  }

  it.each(cases)('%s', async (_name, args, message) => {
    const extra = await args();
    const withModel = extra.includes('--model') ? extra : ['--model', pack, ...extra];
    const question = extra.some((a) => a.trim() === '' || a.startsWith('red ')) ? [] : ['segment the red car'];
    const result = await cli(['ask', ...withModel, ...question]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });

  it('an unknown flag', async () => {
    const result = await cli(['ask', '--model', pack, '--image', photo, '--colour', 'red', 'x']);
    expect(result.code).toBe(2);
  });
});

describe('lisa-bot ask --session', () => {
  it('continues a stored conversation: the follow-up needs no image and the colour moves', async () => {
    const env = { LISABOT_STORE_URL: `sqlite://${path.join(dir, 'cli-sessions.sqlite')}`, LISABOT_MODEL_PROVIDERS: '["cpu"]' };
    const first = await cli(['ask', '--session', 'kitchen', '--model', pack, '--image', photo, '--json', 'the red car'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const one = JSON.parse(first.stdout) as { turn: number; ids: number[]; segments: { rle: RleMask }[] };
    expect(one.turn).toBe(1);
    const second = await cli(['ask', '--session', 'kitchen', '--model', pack, '--json', 'now the blue one'], env);
    expect(second.code).toBe(0);
    const two = JSON.parse(second.stdout) as { turn: number; ids: number[]; segments: { rle: RleMask }[] };
    expect(two.turn).toBe(2);
    expect(two.ids).toEqual(one.ids);
    const truth = truthMask(await decodedPixels(await readFile(photo)), 'blue');
    expect(iou(decodeRle(two.segments[0]!.rle).data, truth)).toBeGreaterThanOrEqual(0.9);
    // Another session has no image yet.
    const other = await cli(['ask', '--session', 'garage', '--model', pack, 'where is it?'], env);
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/no image.*--image FILE/i);
  });
});

describe('lisa-bot discord register', () => {
  it('says which variable to set when there is no bot token', async () => {
    const result = await cli(['discord', 'register'], { DISCORD_TOKEN: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/DISCORD_TOKEN/);
  });
});

describe('lisa-bot --help', () => {
  it('lists the commands', async () => {
    const result = await cli(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['ask', 'models', 'serve', 'discord']) expect(result.stdout).toContain(command);
  });
});
