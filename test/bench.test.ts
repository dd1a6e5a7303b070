/**
 * The bench pack and `lisa-bot bench`: the pack follows the contract, is
 * deterministic and behaves as the bench relies on (a bounded answer with a
 * [SEG], follow-ups that reuse the KV cache); the bench runs and its JSON has
 * the expected shape. No test here asserts a duration.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCH_ANSWER_TOKENS, buildBenchPack, writeBenchPack } from '../models/generator/bench.js';
import { writeToyPack } from '../models/generator/toy.js';
import { imageVariant } from '../src/bench/images.js';
import { photoJpeg, photoPixels } from '../src/bench/standard-images.js';
import { percentile, stableValue } from '../src/bench/stats.js';
import { Engine } from '../src/engine/engine.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

const run = promisify(execFile);
const STAGES = ['imageDecode', 'clipPreprocess', 'samPreprocess', 'visionEncoder', 'prefill', 'decodeSteps', 'segProjection', 'samEncoder', 'maskDecoder', 'postprocess', 'total'];
const TURN_KEYS = ['graph', 'graphSerial', 'engineHost', 'outsideEngine', 'host', 'wall', 'queueWait'];

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

    expect(Object.keys(result)).toEqual(['cache', 'concurrent', 'elapsedMs', 'images', 'machine', 'memory', 'pack', 'settings']);
    expect(result.machine).toMatchObject({ provider: 'cpu', cores: expect.any(Number), cpu: expect.any(String), node: process.version });
    expect(result.pack).toMatchObject({ name: 'toy', dtype: 'float32' });
    expect(result.settings).toEqual({ concurrency: 2, format: 'jpeg', runs: 1, turns: 2, warmup: 0, webPosts: 2 });

    const summary = { median: expect.any(Number), p95: expect.any(Number), n: expect.any(Number) };
    const photo = result.images['photo.jpg'];
    for (const group of [photo.first, photo.followUp]) {
      expect(Object.keys(group.stages).sort()).toEqual([...STAGES].sort());
      for (const stage of STAGES) expect(group.stages[stage]).toEqual(summary);
      expect(Object.keys(group.turn).sort()).toEqual([...TURN_KEYS].sort());
      expect(group.graphs.decoder).toEqual({ ...summary, runs: expect.any(Number) });
      expect(group.tokens).toEqual({ prompt: expect.any(Number), generated: expect.any(Number), reusedFromCache: expect.any(Number), decodeRuns: expect.any(Number) });
      expect(group.longestGraphRun).toEqual({ graph: expect.any(String), ms: expect.any(Number) });
    }
    expect(photo.first.imageCache).toEqual({ hits: 0, misses: 1 });
    expect(photo.followUp.imageCache).toEqual({ hits: 1, misses: 0 });
    expect(photo.followUp.tokens.reusedFromCache).toBeGreaterThan(photo.first.tokens.prompt);
    expect(photo.followUpRatio).toEqual(expect.any(Number));
    expect(Object.keys(photo.hostSteps).sort()).toEqual(['imageDecode', 'overlay.jpeg', 'overlay.png', 'overlay.webp']);
    expect(Object.keys(photo.eventLoopDelay).sort()).toEqual(['max', 'p50', 'p99', 'samples']);
    expect(photo.pageFaultsPerTurn).toBeGreaterThan(0);

    const load = result.concurrent;
    expect(load).toMatchObject({ concurrency: 2, turnsPerConversation: 2, turnsPerSecond: expect.any(Number) });
    expect(load.first.turns).toBe(2);
    expect(load.followUp.turns).toBe(2);
    expect(Object.keys(load.queueWait).sort()).toEqual(['max', 'p50', 'p99']);
    expect(load.web).toMatchObject({ posts: 2, p50: expect.any(Number), p99: expect.any(Number), max: expect.any(Number) });
    expect(Object.keys(load.web.eventLoopDelay).sort()).toEqual(['max', 'p50', 'p99', 'samples']);

    for (const cache of [result.cache.imageEmbeddings, result.cache.kv]) {
      expect(Object.keys(cache).sort()).toEqual(['bytes', 'entries', 'hits', 'limitBytes', 'misses']);
      expect(cache.bytes).toBeLessThanOrEqual(cache.limitBytes);
    }
    expect(result.memory.peakRssMb).toBeGreaterThan(0);
    // Stable form: every number has at most one decimal.
    const numbers: number[] = [];
    JSON.parse(stdout, (_key, value: unknown) => (typeof value === 'number' && numbers.push(value), value));
    expect(numbers.filter((n) => Math.round(n * 10) / 10 !== n)).toEqual([]);
  });
});
