import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenEmbeddingCache } from '../src/engine/caches.js';
import { Engine } from '../src/engine/engine.js';
import { drawShapes, encodeImage, makeToyPack } from './helpers/toy.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

let pack: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  pack = await makeToyPack();
});
afterAll(() => pack.cleanup());

const image = (colour: 'red' | 'blue', x: number) =>
  encodeImage(drawShapes(320, 240, [{ colour, kind: 'rect', x, y: 40, w: 100, h: 80 }]), 'png');

describe('engine caches', () => {
  it('hit on the same image, evict the least recently used, and never exceed their byte limits', async () => {
    // Room for one image's embeddings (the toy's are ~4.6 MB) and one conversation's KV cache.
    const limits = { imageBytes: 6 * 2 ** 20, kvBytes: 32 * 2 ** 10 };
    const engine = await Engine.open(pack.dir, { images: files, cache: limits });
    try {
      const first = await image('red', 20);
      const second = await image('blue', 150);
      const a1 = await engine.chat({ imageHash: files.add(first), turns: [{ user: 'the red one' }] });
      expect(a1.cache.imageEmbeddings).toBe('miss');
      const a2 = await engine.chat({ imageHash: files.add(first), turns: [{ user: 'the red one', assistant: a1.text }, { user: 'and the blue one?' }] });
      expect(a2.cache.imageEmbeddings).toBe('hit');
      expect(a2.tokens.reusedFromCache).toBeGreaterThan(0);

      await engine.chat({ imageHash: files.add(second), turns: [{ user: 'the blue one' }] });
      const stats = engine.stats();
      expect(stats.imageCache.entries).toBe(1);
      expect(stats.imageCache.bytes).toBeLessThanOrEqual(limits.imageBytes);
      expect(stats.kvCache.bytes).toBeLessThanOrEqual(limits.kvBytes);

      // The first image was evicted: its follow-up runs the encoders again, and of the KV cache it
      // reuses only what every conversation shares, the text before the image.
      const again = await engine.chat({ imageHash: files.add(first), turns: [{ user: 'the red one', assistant: a1.text }, { user: 'and the blue one?' }] });
      expect(again.cache.imageEmbeddings).toBe('miss');
      expect(again.tokens.reusedFromCache).toBeGreaterThan(0);
      expect(again.tokens.reusedFromCache).toBeLessThan(a2.tokens.reusedFromCache);
      // ...and answers exactly as before.
      expect(again.text).toBe(a2.text);
      expect(again.segments[0]!.rle).toEqual(a2.segments[0]!.rle);
      expect(engine.stats().imageCache.bytes).toBeLessThanOrEqual(limits.imageBytes);
    } finally {
      await engine.close();
    }
  });

  it('keep nothing when the limit is smaller than one entry', async () => {
    const engine = await Engine.open(pack.dir, { images: files, cache: { imageBytes: 1024, kvBytes: 1024 } });
    try {
      const file = await image('red', 20);
      const first = await engine.chat({ imageHash: files.add(file), turns: [{ user: 'the red one' }] });
      const second = await engine.chat({ imageHash: files.add(file), turns: [{ user: 'the red one', assistant: first.text }, { user: 'now?' }] });
      expect(second.cache.imageEmbeddings).toBe('miss');
      expect(engine.stats().imageCache.bytes).toBe(0);
      expect(engine.stats().kvCache.bytes).toBe(0);
    } finally {
      await engine.close();
    }
  });
});

describe('the KV cache across conversations', () => {
  it('keeps one conversation\'s cache when another starts on the same system prompt', async () => {
    const engine = await Engine.open(pack.dir, { images: files });
    try {
      const a = await image('red', 20);
      const b = await image('blue', 150);
      const a1 = await engine.chat({ imageHash: files.add(a), turns: [{ user: 'the red one' }] });
      await engine.chat({ imageHash: files.add(b), turns: [{ user: 'the blue one' }] });
      const a2 = await engine.chat({ imageHash: files.add(a), turns: [{ user: 'the red one', assistant: a1.text }, { user: 'now?' }] });
      // Everything up to the end of A's first answer comes from A's own entry.
      expect(a2.tokens.reusedFromCache).toBe(a1.tokens.prompt + a1.tokens.generated);
    } finally {
      await engine.close();
    }
  });
});

describe('token embedding rows', () => {
  // A stand-in for embed_tokens: row of id i is [i, i + 0.5, i + 0.25], and every call is recorded.
  const H = 3;
  function graph() {
    const calls: number[][] = [];
    const embed = async (ids: readonly number[]) => {
      calls.push([...ids]);
      return Float32Array.from(ids.flatMap((id) => [id, id + 0.5, id + 0.25]));
    };
    return { calls, embed };
  }

  it('gives the graph rows, in order, duplicates included, and runs the graph only for ids it has not seen', async () => {
    const { calls, embed } = graph();
    const cache = new TokenEmbeddingCache(embed, H, 'float32');
    expect([...(await cache.rows([7, 3, 7]))]).toEqual([7, 7.5, 7.25, 3, 3.5, 3.25, 7, 7.5, 7.25]);
    expect([...(await cache.rows([3, 9]))]).toEqual([3, 3.5, 3.25, 9, 9.5, 9.25]);
    expect([...(await cache.rows([9]))]).toEqual([9, 9.5, 9.25]);
    expect([...(await cache.rows([]))]).toEqual([]);
    expect(calls).toEqual([[7, 3], [9]]);
  });

  it('stays within its byte limit, forgetting the least recently used rows', async () => {
    const { calls, embed } = graph();
    const cache = new TokenEmbeddingCache(embed, H, 'float32', 2 * H * 4);
    await cache.rows([1, 2]);
    await cache.rows([1, 3]); // 2 is the least recently used: it goes
    expect(cache.bytes).toBeLessThanOrEqual(2 * H * 4);
    expect([...(await cache.rows([2]))]).toEqual([2, 2.5, 2.25]);
    expect(calls).toEqual([[1, 2], [3], [2]]);
  });
});
