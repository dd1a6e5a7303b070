/**
 * What a turn may leave behind in memory (issue 17, item 3). No timings: each
 * test asserts a reference, a count or a limit, not how long anything took.
 */
import { execFile } from 'node:child_process';
import { getEventListeners } from 'node:events';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { IncomingTurn } from '../src/assistant/types.js';
import { EngineThread } from '../src/engine/thread.js';
import { LARGE_BUFFER_BYTES, QUIET_COLLECT_MS, collectSoonAfter, largeBufferCollections } from '../src/memory/collect.js';
import { OverlayWorkers } from '../src/render/overlay-workers.js';
import { type ToyAssistant, createToyAssistant } from './helpers/assistant.js';
import { drawShapes, encodeImage, makeToyPack } from './helpers/toy.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

let toy: ToyAssistant;
let photo: Buffer;

beforeAll(async () => {
  toy = await createToyAssistant({ limits: { perUserPerMinute: 100 } });
  photo = await encodeImage(drawShapes(320, 240, [{ colour: 'red', kind: 'rect', x: 40, y: 60, w: 120, h: 90 }]), 'png');
});
afterAll(() => toy.close());

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('a finished turn holds nothing through its signal', () => {
  // A listener left on a signal that outlives the turn (a surface's shutdown
  // signal) kept the job, and through it the decoded image, for good.
  it('the assistant removes its abort listener once the turn is answered', async () => {
    const lasting = new AbortController();
    const turn: IncomingTurn = { surface: 'web', conversationKey: 'web:memory', user: { id: 'alice' }, text: 'the red one', images: [{ kind: 'bytes', data: photo }] };
    await toy.assistant.handle(turn, { signal: lasting.signal });
    await toy.assistant.handle({ ...turn, images: [] }, { signal: lasting.signal });
    expect(getEventListeners(lasting.signal, 'abort')).toHaveLength(0);
  });

  it('the engine thread removes its abort listener once the chat settles, answered or failed', async () => {
    const pack = await makeToyPack();
    const engine = await EngineThread.open(pack.dir, { images: files });
    try {
      const lasting = new AbortController();
      await engine.chat({ imageHash: files.add(photo), turns: [{ user: 'the red one' }], signal: lasting.signal });
      await expect(engine.chat({ imageHash: files.add(photo), turns: [{ user: ' ' }], signal: lasting.signal })).rejects.toThrow();
      expect(getEventListeners(lasting.signal, 'abort')).toHaveLength(0);
    } finally {
      await engine.close();
      await pack.cleanup();
    }
  });
});

describe('large buffers are collected after use, small ones are not', () => {
  it('one collection however often it is asked for before it runs, none for small buffers', async () => {
    const before = largeBufferCollections();
    collectSoonAfter(LARGE_BUFFER_BYTES - 1);
    await nextTurn();
    await nextTurn();
    expect(largeBufferCollections()).toBe(before);
    collectSoonAfter(LARGE_BUFFER_BYTES);
    collectSoonAfter(4 * LARGE_BUFFER_BYTES);
    await nextTurn();
    await nextTurn();
    expect(largeBufferCollections()).toBe(before + 1);
  });

  it('once more when the thread has gone quiet after large buffers, not once per buffer', () => {
    // What a turn leaves after the first collection must not wait for an
    // allocation that an idle server never makes.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate'] });
    try {
      const before = largeBufferCollections();
      collectSoonAfter(LARGE_BUFFER_BYTES);
      vi.advanceTimersByTime(0);
      expect(largeBufferCollections()).toBe(before + 1);
      for (let i = 0; i < 3; i++) {
        vi.advanceTimersByTime(QUIET_COLLECT_MS - 1);
        collectSoonAfter(LARGE_BUFFER_BYTES);
        vi.advanceTimersByTime(0);
      }
      // Each of those bursts collected right after it; none was followed by a quiet collection yet.
      expect(largeBufferCollections()).toBe(before + 4);
      vi.advanceTimersByTime(QUIET_COLLECT_MS);
      expect(largeBufferCollections()).toBe(before + 5);
      vi.advanceTimersByTime(10 * QUIET_COLLECT_MS);
      expect(largeBufferCollections()).toBe(before + 5);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("libvips' operation cache", () => {
  it('stays off, also after a pixel worker loads sharp (which resets it to its defaults)', async () => {
    expect(sharp.cache().items.max).toBe(0);
    const pixels = new OverlayWorkers(1);
    try {
      await pixels.decode(photo, 1e6);
    } finally {
      await pixels.close();
    }
    const cache = sharp.cache();
    expect([cache.items.max, cache.memory.max, cache.files.max]).toEqual([0, 0, 0]);
  });
});

describe('resident memory after many large images', () => {
  // In a child process of its own: RSS belongs to that process alone. The bound
  // is one decoded image: before, each worker kept its last task's pixels.
  it('decoding and drawing twelve 36 MB images leaves less than one of them resident', async () => {
    const script = path.join(import.meta.dirname, 'helpers', 'memory-soak.ts');
    const tsx = path.join(import.meta.dirname, '..', 'node_modules', '.bin', 'tsx');
    const { stdout } = await promisify(execFile)(tsx, [script], { timeout: 120_000 });
    const { baselineMb, settledMb, imageMb } = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    expect(settledMb - baselineMb).toBeLessThan(imageMb);
  }, 150_000);
});
