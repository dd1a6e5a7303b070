import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { decodeImage } from '../src/engine/image.js';
import { decodeRle } from '../src/engine/mask.js';
import { groundTruth, readAnnotation } from '../src/eval/reasonseg.js';
import { BIN, cli } from './helpers/cli.js';
import { FIXTURE, annotationJson, jpeg, writeFixture } from './helpers/reasonseg.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

let dir: string;
let pack: string;
let data: string;

interface Line {
  image: string;
  text: string;
  mode: string;
  intersection: number;
  union: number;
  iou: number;
  ms: number;
  answer?: string;
}
interface Report {
  samples: number;
  gIoU: number;
  cIoU: number;
  mode: string;
  model: string;
  elapsedMs: number;
  skipped: number;
}

const readLines = async (file: string): Promise<Line[]> =>
  (await readFile(file, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-eval-'));
  pack = path.join(dir, 'toy');
  expect((await cli(['models', 'toy', '--out', pack])).code).toBe(0);
  data = path.join(dir, 'val');
  await mkdir(data);
  await writeFixture(data);
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

/**
 * What each sample should score, computed here without the eval code: the
 * engine's mask for the question the paper asks (or the plain text), against
 * the ground truth, counted pixel by pixel.
 */
async function direct(mode: 'paper' | 'chat') {
  const engine = await Engine.open(pack, { images: files });
  try {
    const perSample: Record<string, { intersection: number; union: number }> = {};
    for (const sample of FIXTURE) {
      const image = await readFile(path.join(data, `${sample.name}.jpg`));
      const decoded = await decodeImage(image, { maxPixels: 1e8 });
      const truth = groundTruth(await readAnnotation(path.join(data, `${sample.name}.json`)), decoded.width, decoded.height);
      const text = sample.text[0]!;
      const question = sample.isSentence ? ` ${text} Please output segmentation mask.` : ` What is ${text} in this image? Please output segmentation mask.`;
      const result =
        mode === 'paper'
          ? await engine.chat({ imageHash: files.add(image), turns: [{ user: question }], answer: '[SEG].' })
          : await engine.chat({ imageHash: files.add(image), turns: [{ user: text }] });
      const predicted = result.segments[0] ? decodeRle(result.segments[0].rle).data : new Uint8Array(truth.length);
      let intersection = 0;
      let union = 0;
      truth.forEach((t, i) => {
        if (t === 255) return;
        if (t === 1 && predicted[i] === 1) intersection++;
        if (t === 1 || predicted[i] === 1) union++;
      });
      perSample[`${sample.name}.jpg`] = { intersection, union };
    }
    const values = Object.values(perSample);
    const gIoU = (100 * values.reduce((s, v) => s + (v.union === 0 ? 1 : v.intersection / (v.union + 1e-5)), 0)) / values.length;
    const cIoU = (100 * values.reduce((s, v) => s + v.intersection, 0)) / values.reduce((s, v) => s + v.union, 0);
    return { perSample, gIoU, cIoU };
  } finally {
    await engine.close();
  }
}

describe.each(['paper', 'chat'] as const)('lisa-bot eval --mode %s on the toy fixture', (mode) => {
  it('scores every sample as a direct computation does, and prints gIoU / cIoU', async () => {
    const out = path.join(dir, `${mode}.jsonl`);
    const run = await cli(['eval', '--model', pack, '--data', data, '--mode', mode, '--out', out, '--json']);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report;
    const expected = await direct(mode);
    expect(report).toMatchObject({ samples: 5, mode, model: 'toy', skipped: 0 });
    expect(report.gIoU).toBeCloseTo(expected.gIoU, 2);
    expect(report.cIoU).toBeCloseTo(expected.cIoU, 2);
    const lines = await readLines(out);
    expect(lines.map((l) => l.image)).toEqual(FIXTURE.map((s) => `${s.name}.jpg`));
    for (const line of lines) {
      expect({ image: line.image, intersection: line.intersection, union: line.union }).toEqual({ image: line.image, ...expected.perSample[line.image] });
      expect(line.mode).toBe(mode);
      expect(line.answer).toBe(mode === 'chat' ? 'Sure, it is [SEG].' : undefined);
    }
    const byImage = Object.fromEntries(lines.map((l) => [l.image, l]));
    // No colour named, nothing annotated: a perfect empty answer.
    expect(byImage['c-empty-truth.jpg']).toMatchObject({ intersection: 0, union: 0, iou: 1 });
    // A colour the image lacks: an empty prediction against a real target.
    expect(byImage['d-miss.jpg']!.iou).toBe(0);
    for (const name of ['a-phrase.jpg', 'b-sentence.jpg', 'e-nested.jpg']) expect(byImage[name]!.iou).toBeGreaterThan(0.9);
    expect(run.stderr).toMatch(/5\/5 +[\d.]+ samples\/s +ETA/);
  });
});

describe('lisa-bot eval: teacher forcing in the engine', () => {
  it('reads a given answer once and masks each [SEG] in it as when generated', async () => {
    const engine = await Engine.open(pack, { images: files });
    try {
      const image = await readFile(path.join(data, 'a-phrase.jpg'));
      const generated = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'the red box' }] });
      const forced = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'the red box' }], answer: '[SEG].' });
      expect(forced.text).toBe('[SEG].');
      expect(forced.tokens.decodeRuns).toBe(0);
      expect(forced.segments.map((s) => s.rle)).toEqual(generated.segments.map((s) => s.rle));
      const two = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'the red box' }], answer: 'Sure, [SEG] and [SEG].' });
      expect(two.segments).toHaveLength(2);
      const none = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'the red box' }], answer: 'No.' });
      expect(none.segments).toHaveLength(0);
    } finally {
      await engine.close();
    }
  });
});

describe('lisa-bot eval: long runs', () => {
  it('resumes from --out after a run cut short, ending with the uninterrupted numbers', async () => {
    const full = JSON.parse((await cli(['eval', '--model', pack, '--data', data, '--json'])).stdout) as Report;
    const out = path.join(dir, 'resume.jsonl');
    const partial = await cli(['eval', '--model', pack, '--data', data, '--limit', '2', '--out', out]);
    expect(partial.code).toBe(0);
    // A kill in the middle of a write leaves half a line behind.
    const kept = await readFile(out, 'utf8');
    await writeFile(out, `${kept}{"image":"c-empty-tr`);
    const resumed = await cli(['eval', '--model', pack, '--data', data, '--out', out, '--json']);
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toContain('Resuming: 2 of 5 samples already scored');
    expect(resumed.stderr).toMatch(/3\/3 /);
    const report = JSON.parse(resumed.stdout) as Report;
    expect([report.samples, report.gIoU, report.cIoU]).toEqual([full.samples, full.gIoU, full.cIoU]);
    expect((await readLines(out)).map((l) => l.image).sort()).toEqual(FIXTURE.map((s) => `${s.name}.jpg`));
  });

  it('stops cleanly on Ctrl-C after the sample in progress, and a rerun finishes the rest', async () => {
    const many = path.join(dir, 'many');
    await mkdir(many);
    const names: string[] = [];
    for (let copy = 0; copy < 8; copy++) {
      for (const sample of FIXTURE) {
        const name = `${copy}-${sample.name}`;
        names.push(`${name}.jpg`);
        await copyFile(path.join(data, `${sample.name}.jpg`), path.join(many, `${name}.jpg`));
        await copyFile(path.join(data, `${sample.name}.json`), path.join(many, `${name}.json`));
      }
    }
    const out = path.join(dir, 'sigint.jsonl');
    const child = spawn(process.execPath, [BIN, 'eval', '--model', pack, '--data', many, '--out', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    for (;;) {
      const text = await readFile(out, 'utf8').catch(() => '');
      if (text.includes('\n')) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('Stopping after the current sample');
    expect(stdout).toContain('stopped early');
    const lines = await readLines(out);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.length).toBeLessThan(names.length);
    const rest = await cli(['eval', '--model', pack, '--data', many, '--out', out, '--json']);
    expect(rest.code).toBe(0);
    expect((JSON.parse(rest.stdout) as Report).samples).toBe(names.length);
    expect((await readLines(out)).map((l) => l.image).sort()).toEqual([...names].sort());
  });

  it('writes an overlay per sample with --overlays, and a table without --json', async () => {
    const overlays = path.join(dir, 'overlays');
    const run = await cli(['eval', '--model', pack, '--data', data, '--limit', '2', '--overlays', overlays]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^model +toy\nmode +paper\nsamples +2\ngIoU +\d+\.\d\d\ncIoU +\d+\.\d\d\ntime +/);
    expect((await readdir(overlays)).sort()).toEqual(['a-phrase.jpg', 'b-sentence.jpg']);
    const meta = await sharp(path.join(overlays, 'a-phrase.jpg')).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 160, 120]);
  });
});

describe('lisa-bot eval: bad input', () => {
  it('skips unusable samples with a warning each, counts them, and scores the rest', async () => {
    const bad = path.join(dir, 'bad');
    await mkdir(bad);
    const good = FIXTURE[0]!;
    const image = await jpeg(good.shapes);
    const sample = async (name: string, json: string | Buffer | null, bytes: Buffer = image) => {
      await writeFile(path.join(bad, `${name}.jpg`), bytes);
      if (json !== null) await writeFile(path.join(bad, `${name}.json`), json);
    };
    await sample('good', annotationJson(good));
    // Windows-1252 bytes (é = 0xE9): read as the reference's fallback reads them.
    await sample('cp1252', Buffer.from(annotationJson({ ...good, text: ['the red caf\u00e9 sign'] }), 'latin1'));
    await sample('no-text', JSON.stringify({ is_sentence: false, shapes: [] }));
    await sample('no-shapes', JSON.stringify({ text: ['the red box'], is_sentence: false }));
    await sample('two-points', annotationJson({ ...good, polygons: [{ label: 'target', points: [[1, 1], [20, 20]] }] }));
    await sample('not-an-image', annotationJson(good), Buffer.from('this is not a JPEG'));
    await sample('no-json', null);
    await sample('not-json', '{"text": [');
    const run = await cli(['eval', '--model', pack, '--data', bad, '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ samples: 2, skipped: 6 });
    const warnings = run.stderr.split('\n').filter((l) => l.startsWith('warning: skipped'));
    expect(warnings.map((w) => w.split(':')[1]!.trim().replace('skipped ', ''))).toEqual(
      ['no-json.jpg', 'no-shapes.jpg', 'no-text.jpg', 'not-an-image.jpg', 'not-json.jpg', 'two-points.jpg'],
    );
    expect(run.stderr).toContain('fewer than 3');
    expect(run.stderr).toContain('has no "text"');
  });

  it('refuses with one line and exit 2 when nothing is usable', async () => {
    const empty = path.join(dir, 'empty');
    await mkdir(empty);
    const allBad = path.join(dir, 'all-bad');
    await mkdir(allBad);
    await writeFile(path.join(allBad, 'x.jpg'), 'not an image');
    await writeFile(path.join(allBad, 'x.json'), annotationJson(FIXTURE[0]!));
    const chatResults = path.join(dir, 'other-mode.jsonl');
    await writeFile(chatResults, `${JSON.stringify({ image: 'a-phrase.jpg', text: 't', mode: 'chat', intersection: 1, union: 1, iou: 1, ms: 1 })}\n`);
    const cases: [string[], RegExp][] = [
      [['--data', empty], /^lisa-bot: No samples in .*NAME\.jpg/],
      [['--data', allBad], /^lisa-bot: None of the 1 samples in .* can be used \(the first: x\.jpg: /],
      [['--data', path.join(dir, 'nowhere')], /^lisa-bot: --data folder not found/],
      [['--data', data, '--limit', '0'], /^lisa-bot: --limit must be a positive whole number/],
      [['--data', data, '--mode', 'exam'], /invalid/],
      [['--data', data, '--out', path.join(dir, 'nowhere', 'r.jsonl')], /^lisa-bot: --out folder not found/],
      [['--data', data, '--out', chatResults], /^lisa-bot: --out .* holds chat-mode results and this run is --mode paper/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(['eval', '--model', pack, ...args]);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stdout).toBe('');
      const lines = run.stderr.split('\n').filter((l) => l.startsWith('lisa-bot') || l.startsWith('error'));
      expect(lines[0], args.join(' ')).toMatch(message);
    }
    const noModel = await cli(['eval', '--model', path.join(dir, 'no-pack'), '--data', data]);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr.trim().split('\n')).toHaveLength(1);
  });
});
