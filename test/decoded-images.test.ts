import { afterAll, describe, expect, it } from 'vitest';
import { inferenceHandler } from '../src/assistant/inference.js';
import { sha256Hex } from '../src/conversation/index.js';
import { type PackManifest, packFingerprint } from '../src/engine/manifest.js';
import type { ChatEngine, ChatRequest, ChatResult } from '../src/engine/types.js';
import { UserInputError } from '../src/errors.js';
import { DecodedImages } from '../src/render/decoded-images.js';
import { OverlayWorkers } from '../src/render/overlay-workers.js';
import { decodedPixels, drawShapes, encodeImage } from './helpers/toy.js';

const pixels = new OverlayWorkers(1);
afterAll(() => pixels.close());

/** The real pool, counting decodes. */
function countingPool(): { pool: Pick<OverlayWorkers, 'decode'>; decodes: () => number } {
  let decodes = 0;
  const pool = {
    decode: (...args: Parameters<OverlayWorkers['decode']>) => {
      decodes++;
      return pixels.decode(...args);
    },
  };
  return { pool, decodes: () => decodes };
}

async function photo(seed: number): Promise<{ bytes: Buffer; hash: string }> {
  const image = drawShapes(96, 64, [{ kind: 'rect', colour: 'red', x: 5 + seed, y: 7, w: 30, h: 20 }]);
  const bytes = await encodeImage(image, 'png');
  return { bytes, hash: sha256Hex(bytes) };
}

describe('DecodedImages', () => {
  it('decodes an image once for every reader, into shared memory holding the exact pixels', async () => {
    const { pool, decodes } = countingPool();
    const images = new DecodedImages(pool, { maxPixels: 1e6 });
    const { bytes, hash } = await photo(0);
    images.prefetch(hash, bytes);
    const [a, b] = await Promise.all([images.acquire(hash, bytes), images.acquire(hash, bytes)]);
    expect(decodes()).toBe(1);
    expect(a.image).toBe(b.image);
    expect(a.image.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    const expected = await decodedPixels(bytes);
    expect([a.image.width, a.image.height]).toEqual([expected.width, expected.height]);
    expect(Buffer.from(a.image.data).equals(Buffer.from(expected.data))).toBe(true);
    a.release();
    b.release();
  });

  it('never hands a held image’s memory to another image', async () => {
    const images = new DecodedImages(countingPool().pool, { maxPixels: 1e6 });
    const first = await photo(1);
    const held = await images.acquire(first.hash, first.bytes);
    const before = Buffer.from(held.image.data);
    for (const seed of [2, 3, 4, 5]) {
      const other = await photo(seed);
      const lease = await images.acquire(other.hash, other.bytes);
      expect(Buffer.from(lease.image.data).equals(Buffer.from((await decodedPixels(other.bytes)).data))).toBe(true);
      lease.release();
    }
    expect(Buffer.from(held.image.data).equals(before)).toBe(true);
    held.release();
  });

  it('decodes into the memory of an image evicted earlier', async () => {
    const images = new DecodedImages(countingPool().pool, { maxPixels: 1e6 });
    const [a, b, c] = await Promise.all([photo(1), photo(2), photo(3)]);
    const first = await images.acquire(a.hash, a.bytes);
    const stale = first.image.data;
    first.release();
    (await images.acquire(b.hash, b.bytes)).release(); // evicts a: only the newest idle image is kept
    const third = await images.acquire(c.hash, c.bytes);
    expect(Buffer.from(third.image.data).equals(Buffer.from((await decodedPixels(c.bytes)).data))).toBe(true);
    // The same memory, though not the same SharedArrayBuffer object after a thread hop.
    stale[0] = stale[0]! ^ 0xff;
    expect(third.image.data[0]).toBe(stale[0]);
    third.release();
  });

  it('keeps the most recent image for the next turn, and drops it when cleared', async () => {
    const { pool, decodes } = countingPool();
    const images = new DecodedImages(pool, { maxPixels: 1e6 });
    const { bytes, hash } = await photo(7);
    (await images.acquire(hash, bytes)).release();
    (await images.acquire(hash, bytes)).release();
    expect(decodes()).toBe(1);
    images.clear();
    expect(images.has(hash)).toBe(false);
    (await images.acquire(hash, bytes)).release();
    expect(decodes()).toBe(2);
  });

  it('reports a damaged image to every reader and does not keep the failure', async () => {
    const { pool, decodes } = countingPool();
    const images = new DecodedImages(pool, { maxPixels: 1e6 });
    const { bytes } = await photo(8);
    const damaged = bytes.subarray(0, 60);
    const hash = sha256Hex(damaged);
    await expect(images.acquire(hash, damaged)).rejects.toMatchObject({ code: 'image_corrupt' });
    expect(images.has(hash)).toBe(false);
    await expect(images.acquire(hash, damaged)).rejects.toBeInstanceOf(UserInputError);
    expect(decodes()).toBe(2);
  });
});

describe('the inference handler', () => {
  it('asks the engine by image hash and returns plain data, as a worker on another host would', async () => {
    const requests: ChatRequest[] = [];
    const manifest = { name: 'fake' } as PackManifest;
    const engine = {
      manifest,
      async chat(request: ChatRequest): Promise<ChatResult> {
        requests.push(request);
        return {
          text: 'Sure, [SEG].',
          ids: [1, 2],
          segments: [{ rle: { size: [2, 2], counts: '04' }, bbox: [0, 0, 2, 2], area: 4, score: 0.9 }],
          timings: {
            imageDecode: 1, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0,
            segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 5,
          },
          tokens: { prompt: 1, generated: 2, reusedFromCache: 0, decodeRuns: 1 },
          cache: { imageEmbeddings: 'miss' },
          graphRuns: [],
        };
      },
    } as unknown as ChatEngine;
    const job = { imageHash: 'a'.repeat(64), turns: [{ user: 'where is the red one?' }], pack: packFingerprint(manifest) };
    const signal = new AbortController().signal;
    const result = await inferenceHandler(engine)(JSON.parse(JSON.stringify(job)), { signal });
    expect(requests).toEqual([{ imageHash: job.imageHash, turns: job.turns, signal }]);
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    expect(result).toMatchObject({ text: 'Sure, [SEG].', imageEmbeddings: 'miss', segments: [{ area: 4, score: 0.9 }] });
  });
});
