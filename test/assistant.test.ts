import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncomingTurn, ProgressEvent, Reply } from '../src/assistant/types.js';
import { decodeRle } from '../src/engine/mask.js';
import { Engine } from '../src/engine/engine.js';
import { UserInputError } from '../src/errors.js';
import { type ToyAssistant, createToyAssistant } from './helpers/assistant.js';
import { decodedPixels, drawShapes, encodeImage, iou, truthMask } from './helpers/toy.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

let toy: ToyAssistant;
let photo: Buffer;

const scene = () =>
  drawShapes(720, 480, [
    { colour: 'red', kind: 'rect', x: 40, y: 60, w: 220, h: 150 },
    { colour: 'blue', kind: 'circle', x: 420, y: 200, w: 200, h: 200 },
    { colour: 'green', kind: 'rect', x: 300, y: 20, w: 90, h: 90 },
  ]);

function turn(key: string, text: string, withImage = false, user = 'alice'): IncomingTurn {
  return {
    surface: 'web',
    conversationKey: `web:${key}`,
    user: { id: user },
    text,
    images: withImage ? [{ kind: 'bytes', data: photo }] : [],
  };
}

async function maskMatches(reply: Reply, colour: 'red' | 'blue' | 'green'): Promise<number> {
  expect(reply.segments).toHaveLength(1);
  const truth = truthMask(await decodedPixels(photo), colour);
  return iou(decodeRle(reply.segments[0]!.rle).data, truth);
}

beforeAll(async () => {
  toy = await createToyAssistant({ limits: { perUserPerMinute: 100 } });
  photo = await encodeImage(scene(), 'jpeg');
});
afterAll(() => toy.close());

describe('a conversation through the assistant', () => {
  it('follows red, then blue, then "where is it now?" stays blue', async () => {
    const first = await toy.assistant.handle(turn('three', 'segment the red square', true));
    expect(await maskMatches(first, 'red')).toBeGreaterThanOrEqual(0.9);
    expect(first.text).toBe(`Sure, it is ${first.segments[0]!.colour.emoji}.`);
    expect(first.rawText).toBe('Sure, it is [SEG].');
    expect(first.overlay?.contentType).toBe('image/png');
    expect(first.demoNotice).toMatch(/not LISA/);
    const second = await toy.assistant.handle(turn('three', 'now the blue one'));
    expect(await maskMatches(second, 'blue')).toBeGreaterThanOrEqual(0.9);
    const third = await toy.assistant.handle(turn('three', 'and where is it now?'));
    expect(await maskMatches(third, 'blue')).toBeGreaterThanOrEqual(0.9);
    expect(third.turnIndex).toBe(2);
    const session = await toy.runtime.stores.sessions.get('web:three');
    expect(session?.turns.map((t) => t.user)).toEqual(['segment the red square', 'now the blue one', 'and where is it now?']);
  });

  it('draws the overlay in the colour of the text marker', async () => {
    const reply = await toy.assistant.handle(turn('colour', 'the green one', true));
    const overlay = await sharp(reply.overlay!.data).raw().toBuffer({ resolveWithObject: true });
    const [r, g, b] = reply.segments[0]!.colour.rgb;
    // The middle of the green square: a 50% blend of the decoded pixel's grey (luma) and the marker colour.
    const pixels = await decodedPixels(photo);
    const p = (65 * overlay.info.width + 345) * overlay.info.channels;
    const q = (65 * pixels.width + 345) * 3;
    const [pr, pg, pb] = pixels.data.subarray(q, q + 3);
    const grey = (77 * pr! + 150 * pg! + 29 * pb! + 128) >> 8;
    const expected = [r, g, b].map((c) => (grey + c + 1) >> 1);
    expect([...overlay.data.subarray(p, p + 3)]).toEqual(expected);
  });

  it('starts a new image context when a new image arrives', async () => {
    await toy.assistant.handle(turn('switch', 'the red one', true));
    const other = await encodeImage(drawShapes(300, 200, [{ colour: 'red', kind: 'rect', x: 0, y: 0, w: 150, h: 200 }]), 'png');
    const reply = await toy.assistant.handle({ ...turn('switch', 'where is it?'), images: [{ kind: 'bytes', data: other }] });
    // No colour named since the new image: the mask is empty, not the old red.
    expect(reply.segments[0]!.empty).toBe(true);
    // Drawn on the new image's pixels, not on the last image's kept by the overlay thread.
    const overlay = await sharp(reply.overlay!.data).raw().toBuffer({ resolveWithObject: true });
    expect([overlay.info.width, overlay.info.height]).toEqual([300, 200]);
    const pixels = await decodedPixels(other);
    expect(Buffer.compare(overlay.data, Buffer.from(pixels.data))).toBe(0);
  });

  it('refuses a follow-up with no image anywhere, and an empty question', async () => {
    await expect(toy.assistant.handle(turn('none', 'the red one'))).rejects.toMatchObject({ code: 'no_image' });
    await expect(toy.assistant.handle(turn('none', '   ', true))).rejects.toMatchObject({ code: 'question_empty' });
    expect(await toy.assistant.hasImage('web:none')).toBe(false);
  });

  it('queues a follow-up sent before the first turn is answered behind it, on its image and after its answer', async () => {
    const events: ProgressEvent[] = [];
    const first = toy.assistant.handle(turn('early', 'the red one', true));
    const followUp = toy.assistant.handle(turn('early', 'now the blue one'), { onProgress: (e) => events.push(e) });
    const [a, b] = await Promise.all([first, followUp]);
    expect(await maskMatches(a, 'red')).toBeGreaterThanOrEqual(0.9);
    expect(await maskMatches(b, 'blue')).toBeGreaterThanOrEqual(0.9);
    expect(b.turnIndex).toBe(1);
    expect(events[0]?.type).toBe('queued');
    const session = await toy.runtime.stores.sessions.get('web:early');
    expect(session?.turns.map((t) => t.user)).toEqual(['the red one', 'now the blue one']);
  });

  it('reports progress: queued, then started', async () => {
    const events: ProgressEvent[] = [];
    await toy.assistant.handle(turn('progress', 'the blue one', true), { onProgress: (e) => events.push(e) });
    expect(events.map((e) => e.type)).toEqual(['queued', 'started']);
  });

  it('records nothing when the image cannot be stored', async () => {
    const images = toy.runtime.stores.images;
    const put = images.put;
    images.put = () => Promise.reject(new Error('disk full'));
    try {
      await expect(toy.assistant.handle(turn('unstored', 'the red one', true))).rejects.toThrow(/disk full/);
    } finally {
      images.put = put;
    }
    expect(await toy.runtime.stores.sessions.get('web:unstored')).toBeUndefined();
  });

  it('answers the same request id once, however often it is delivered', async () => {
    const request = { ...turn('retry', 'the red one', true), requestId: 'evt-1' };
    const [a, b] = await Promise.all([toy.assistant.handle(request), toy.assistant.handle(request)]);
    expect(a).toBe(b);
    expect((await toy.runtime.stores.sessions.get('web:retry'))?.turns).toHaveLength(1);
  });
});

describe('follow-ups are fast', () => {
  it('skip both vision encoders and give the same answer and mask as a cold run', async () => {
    // An image no other test used, so the first turn really runs the encoders.
    const image = await encodeImage(scene(), 'webp');
    const first = await toy.assistant.handle({ ...turn('cache', 'segment the red square'), images: [{ kind: 'bytes', data: image }] });
    expect(first.timings.visionEncoder).toBeGreaterThan(0);
    const stats = () => toy.runtime.engine.stats();
    const kvHitsBefore = stats().kvCache.hits;
    const follow = await toy.assistant.handle(turn('cache', 'now the blue one'));
    expect(follow.timings.visionEncoder).toBe(0);
    expect(follow.timings.samEncoder).toBe(0);
    expect(follow.timings.imageDecode).toBe(0);
    expect(stats().kvCache.hits).toBe(kvHitsBefore + 1);

    // A cold engine, fed the same conversation, agrees exactly.
    const cold = await Engine.open(toy.config.model.path, { images: files });
    const result = await cold.chat({
      imageHash: files.add(image),
      turns: [{ user: 'segment the red square', assistant: first.rawText }, { user: 'now the blue one' }],
    });
    await cold.close();
    expect(result.text).toBe(follow.rawText);
    expect(result.tokens.reusedFromCache).toBe(0);
    expect(decodeRle(follow.segments[0]!.rle).data).toEqual(decodeRle(result.segments[0]!.rle).data);
  });

  it('prefills only the new question on a follow-up', async () => {
    const engine = toy.runtime.engine;
    // Words no other test asks, so no other conversation's cache shares more than the image.
    const turns = [{ user: 'show me the green square please' }];
    // The engine reads the file from the conversation store, as for any turn.
    const imageHash = await toy.runtime.stores.images.put(photo);
    const first = await engine.chat({ imageHash, turns });
    const second = await engine.chat({ imageHash, turns: [{ ...turns[0]!, assistant: first.text }, { user: 'and the red one now' }] });
    // Everything up to the end of the first answer came from the cache.
    expect(second.tokens.reusedFromCache).toBe(first.tokens.prompt + first.tokens.generated);
  });
});

describe('limits', () => {
  it('rate-limits a user with a clear message', async () => {
    const limited = await createToyAssistant({ limits: { perUserPerMinute: 1 } });
    try {
      await limited.assistant.handle({ ...turn('rate', 'the red one'), images: [{ kind: 'bytes', data: photo }] });
      const error = await limited.assistant.handle(turn('rate', 'the blue one')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UserInputError);
      expect((error as UserInputError).message).toMatch(/at most 1 questions? a minute/);
    } finally {
      await limited.close();
    }
  });

  it('refuses users and channels outside the allow-lists', async () => {
    const guarded = await createToyAssistant({ limits: { allowedUsers: ['web:bob'], allowedChannels: ['discord:c1'] } });
    try {
      await expect(guarded.assistant.handle(turn('allow', 'red', true, 'alice'))).rejects.toMatchObject({ code: 'not_allowed' });
      await expect(
        guarded.assistant.handle({ ...turn('allow', 'red', true, 'bob'), surface: 'web', channelId: 'c2' }),
      ).rejects.toMatchObject({ code: 'not_allowed' });
    } finally {
      await guarded.close();
    }
  });
});
