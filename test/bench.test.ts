/**
 * The bench pack and `lisa-bot bench`: the pack follows the contract, is
 * deterministic and behaves as the bench relies on (a bounded answer with a
 * [SEG], follow-ups that reuse the KV cache); the bench runs and its JSON reports
 * what was asked for: every stage the engine times, the turn as a user waits
 * for it, load and caches. No test here asserts a duration.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_ANSWER_TOKENS, buildBenchPack, writeBenchPack } from '../models/generator/bench.js';
import { writeToyPack } from '../models/generator/toy.js';
import { TURN_KEYS } from '../src/bench/breakdown.js';
import { imageVariant } from '../src/bench/images.js';
import { photoJpeg, photoPixels } from '../src/bench/standard-images.js';
import { percentile, stableValue } from '../src/bench/stats.js';
import { Engine } from '../src/engine/engine.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';
import { overlayFormats } from '../src/render/formats.js';

const files = new ImagesInMemory();

const run = promisify(execFile);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-bench-test-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('the bench pack', () => {
  it('is byte-identical on every build', () => {
    const a = buildBenchPack({ dtype: 'float16' });
    const b = buildBenchPack({ dtype: 'float16' });
    expect(a.map((f) => f.name)).toEqual(b.map((f) => f.name));
    expect(a.map((f) => sha(f.bytes))).toEqual(b.map((f) => sha(f.bytes)));
    // Under the size budget, with room to spare (float32 is twice this).
    expect(a.reduce((n, f) => n + f.bytes.length, 0)).toBeLessThan(100e6);
  });

  it('loads under the contract, answers with a [SEG] and a mask, and follow-ups reuse the KV cache', async () => {
    const pack = path.join(dir, 'bench');
    await writeBenchPack(pack);
    const engine = await Engine.open(pack, { images: files, draftLength: 8 });
    try {
      expect(engine.manifest).toMatchObject({ name: 'bench', demo: true, decoder: { vocab: 8000, hidden: 512 } });
      const image = await photoJpeg(320, 240);
      const first = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'What is in this picture?' }] });
      expect(first.text.split(' ').filter((w) => w === '[SEG]')).toHaveLength(1);
      expect(first.tokens.generated).toBe(BENCH_ANSWER_TOKENS);
      expect(first.segments).toHaveLength(1);
      expect(first.segments[0]!.area).toBeGreaterThan(0);
      const second = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'What is in this picture?', assistant: first.text }, { user: 'And now?' }] });
      expect(second.text).toBe(first.text);
      expect(second.cache.imageEmbeddings).toBe('hit');
      // The answer re-tokenises to the ids that were generated: the whole first exchange is reused.
      expect(second.tokens.reusedFromCache).toBe(first.tokens.prompt + first.tokens.generated);
      // The repeated answer is found in the history: checked a draft at a time, not a token at a time.
      expect(first.tokens.decodeRuns).toBe(BENCH_ANSWER_TOKENS);
      expect(second.tokens.decodeRuns).toBeLessThanOrEqual(3);
    } finally {
      await engine.close();
    }
  });
});

describe('bench helpers', () => {
  it('makes image copies that hash differently and decode to the same pixels', async () => {
    const raw = { raw: { width: 64, height: 48, channels: 3 as const } };
    for (const original of [await sharp(photoPixels(64, 48), raw).jpeg().toBuffer(), await sharp(photoPixels(64, 48), raw).png().toBuffer()]) {
      const a = imageVariant(original, 'run 1');
      const b = imageVariant(original, 'run 2');
      expect(new Set([sha(original), sha(a), sha(b)]).size).toBe(3);
      const pixels = async (bytes: Uint8Array) => sha(await sharp(bytes, { failOn: 'warning' }).raw().toBuffer());
      expect(await pixels(a)).toBe(await pixels(original));
      expect(await pixels(b)).toBe(await pixels(original));
    }
  });

  it('writes stable JSON: sorted keys, numbers to 0.1', () => {
    expect(JSON.stringify(stableValue({ b: 1.26, a: { d: [0.04, 2], c: Number.NaN } }))).toBe('{"a":{"c":null,"d":[0,2]},"b":1.3}');
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 95)).toBe(5);
  });
});

describe('lisa-bot bench --json', () => {
  it('runs on the toy pack and reports every stage, the breakdown, load and memory', async () => {
    const pack = path.join(dir, 'toy');
    await writeToyPack(pack);
    const image = path.join(dir, 'photo.jpg');
    await writeFile(image, await photoJpeg(320, 240));
    const args = ['bench', '--model', pack, '--image', image, '--runs', '1', '--warmup', '0', '--turns', '2', '--concurrency', '2', '--web-posts', '2', '--provider', 'cpu', '--json'];
    const { stdout } = await run(process.execPath, [path.resolve('src/bin.js'), ...args], { maxBuffer: 16 * 2 ** 20 });
    const result = JSON.parse(stdout);
    // The stages the engine times in a turn, asked of the engine rather than listed here.
    const engine = await Engine.open(pack, { images: files });
    const stages = await engine
      .chat({ imageHash: files.add(await readFile(image)), turns: [{ user: 'segment the red thing' }] })
      .then((r) => Object.keys(r.timings).sort())
      .finally(() => engine.close());

    expect(result.machine).toMatchObject({ provider: 'cpu', cores: expect.any(Number), cpu: expect.any(String), node: process.version });
    expect(result.pack).toMatchObject({ name: 'toy', dtype: 'float32' });
    // What was asked for on the command line is what the result says it measured.
    expect(result.settings).toMatchObject({ concurrency: 2, runs: 1, turns: 2, warmup: 0, webPosts: 2 });
    expect(overlayFormats).toContain(result.settings.format);

    const summary = { median: expect.any(Number), p95: expect.any(Number), n: expect.any(Number) };
    const photo = result.images['photo.jpg'];
    for (const group of [photo.first, photo.followUp]) {
      expect(Object.keys(group.stages).sort()).toEqual(stages);
      for (const stage of stages) expect(group.stages[stage]).toEqual(summary);
      // Every row of the report's turn breakdown is there.
      for (const key of TURN_KEYS) expect(group.turn[key]).toEqual(summary);
      expect(group.graphs.decoder).toEqual({ ...summary, runs: expect.any(Number) });
      expect(group.tokens).toEqual({ prompt: expect.any(Number), generated: expect.any(Number), reusedFromCache: expect.any(Number), decodeRuns: expect.any(Number) });
      expect(group.longestGraphRun).toEqual({ graph: expect.any(String), ms: expect.any(Number) });
    }
    expect(photo.first.imageCache).toEqual({ hits: 0, misses: 1 });
    expect(photo.followUp.imageCache).toEqual({ hits: 1, misses: 0 });
    expect(photo.followUp.tokens.reusedFromCache).toBeGreaterThan(photo.first.tokens.prompt);
    expect(photo.followUpRatio).toEqual(expect.any(Number));
    // Every overlay format is timed on its own, besides the decode.
    expect(Object.keys(photo.hostSteps).sort()).toEqual(['imageDecode', ...overlayFormats.map((f) => `overlay.${f}`)].sort());
    const delay = { p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) };
    expect(photo.eventLoopDelay).toMatchObject(delay);
    expect(photo.pageFaultsPerTurn).toBeGreaterThan(0);

    const load = result.concurrent;
    expect(load).toMatchObject({ concurrency: 2, turnsPerConversation: 2, turnsPerSecond: expect.any(Number) });
    expect(load.first.turns).toBe(2);
    expect(load.followUp.turns).toBe(2);
    expect(load.queueWait).toMatchObject({ p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) });
    expect(load.web).toMatchObject({ posts: 2, p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number), eventLoopDelay: delay });

    // Both caches were used by these turns and stayed within their limits.
    for (const cache of [result.cache.imageEmbeddings, result.cache.kv]) {
      expect(cache.hits + cache.misses).toBeGreaterThan(0);
      expect(cache.bytes).toBeLessThanOrEqual(cache.limitBytes);
    }
    expect(result.memory.peakRssMb).toBeGreaterThan(0);
    // Stable form: every number has at most one decimal.
    const numbers: number[] = [];
    JSON.parse(stdout, (_key, value: unknown) => (typeof value === 'number' && numbers.push(value), value));
    expect(numbers.filter((n) => Math.round(n * 10) / 10 !== n)).toEqual([]);
  });
});
