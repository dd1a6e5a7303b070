import { afterAll, describe, expect, it } from 'vitest';
import { inferenceHandler } from '../src/assistant/inference.js';
import type { ImageStore } from '../src/conversation/index.js';
import { sha256Hex } from '../src/conversation/index.js';
import type { ChatEngine } from '../src/engine/thread.js';
import type { ChatRequest, ChatResult } from '../src/engine/types.js';
import { clipPixelValues } from '../src/engine/preprocess.js';
import { UserInputError } from '../src/errors.js';
import { DecodedImages } from '../src/workers/decoded-images.js';
import { type PixelPool, acquirePixelPool } from '../src/workers/pool.js';
import { decodedPixels, drawShapes, encodeImage } from './helpers/toy.js';

const pixels = acquirePixelPool(1);
afterAll(() => pixels.release());

/** The real pool, counting decodes. */
function countingPool(): { pool: PixelPool; decodes: () => number } {
  let decodes = 0;
  const pool = Object.create(pixels.pool) as PixelPool;
  pool.decode = (...args: Parameters<PixelPool['decode']>) => {
    decodes++;
    return pixels.pool.decode(...args);
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

  it("makes CLIP's pixel values with each decode, as the engine's preprocessing would", async () => {
    const clip = { size: 224, mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], resample: 'bicubic' } as const;
    const images = new DecodedImages(countingPool().pool, { maxPixels: 1e6, clip: { ...clip, mean: [...clip.mean], std: [...clip.std] } });
    for (const seed of [10, 11]) {
      const { bytes, hash } = await photo(seed);
      const lease = await images.acquire(hash, bytes);
      const expected = await clipPixelValues(await decodedPixels(bytes), { ...clip, mean: [...clip.mean], std: [...clip.std] });
      expect(lease.image.clip?.settings.size).toBe(224);
      expect(Buffer.from(lease.image.clip!.values.buffer, lease.image.clip!.values.byteOffset, lease.image.clip!.values.byteLength).equals(Buffer.from(expected.buffer))).toBe(true);
      // Beside the pixels, not over them.
      expect(Buffer.from(lease.image.data).equals(Buffer.from((await decodedPixels(bytes)).data))).toBe(true);
      lease.release();
    }
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

describe('the inference handler with decoded images', () => {
  function recordingEngine(cached: Set<string>) {
    const requests: ChatRequest[] = [];
    const engine = {
      hasImageEmbeddings: (hash: string) => cached.has(hash),
      async chat(request: ChatRequest): Promise<ChatResult> {
        requests.push(request);
        return {
          text: 'ok',
          ids: [],
          segments: [],
          timings: {
            imageDecode: 0, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0,
            segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 5,
          },
          tokens: { prompt: 1, generated: 1, reusedFromCache: 0, decodeRuns: 1 },
          cache: { imageEmbeddings: 'miss' },
          graphRuns: [],
        };
      },
    } as unknown as ChatEngine;
    return { engine, requests };
  }

  function storeOf(files: Map<string, Uint8Array>): ImageStore {
    return { get: async (hash: string) => files.get(hash) } as unknown as ImageStore;
  }

  it('hands the engine the pixels the overlay will use, unless the engine has the image already', async () => {
    const { pool, decodes } = countingPool();
    const images = new DecodedImages(pool, { maxPixels: 1e6 });
    const { bytes, hash } = await photo(9);
    const cached = new Set<string>();
    const { engine, requests } = recordingEngine(cached);
    const handle = inferenceHandler(engine, storeOf(new Map([[hash, bytes]])), images);
    const job = { imageHash: hash, turns: [{ user: 'where is the red one?' }] };

    const first = await handle(job, { signal: new AbortController().signal });
    expect(requests[0]!.decoded?.width).toBe(96);
    expect(first.timings.imageDecode).toBeGreaterThan(0);
    const overlay = await images.acquire(hash, bytes);
    expect(overlay.image).toBe(requests[0]!.decoded);
    overlay.release();
    expect(decodes()).toBe(1);

    cached.add(hash);
    await handle(job, { signal: new AbortController().signal });
    expect(requests[1]!.decoded).toBeUndefined();
  });
});
