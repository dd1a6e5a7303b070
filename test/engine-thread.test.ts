import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineThread } from '../src/engine/thread.js';
import { UserInputError } from '../src/errors.js';
import { drawShapes, encodeImage, makeToyPack } from './helpers/toy.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

let pack: { dir: string; cleanup: () => Promise<void> };
let engine: EngineThread;
let image: Buffer;

beforeAll(async () => {
  pack = await makeToyPack();
  engine = await EngineThread.open(pack.dir, { images: files });
  image = await encodeImage(drawShapes(200, 150, [{ colour: 'green', kind: 'rect', x: 20, y: 30, w: 80, h: 60 }]), 'png');
});
afterAll(async () => {
  await engine.close();
  await pack.cleanup();
});

describe('the engine on its own thread', () => {
  let greenArea = 0;
  it('answers like the engine, and counts prompts on the calling side', async () => {
    const turns = [{ user: 'the green one' }];
    const result = await engine.chat({ imageHash: files.add(image), turns });
    expect(result.text).toBe('Sure, it is [SEG].');
    expect(result.segments[0]!.bbox).toEqual([20, 30, 80, 60]);
    greenArea = result.segments[0]!.area;
    expect(result.tokens.prompt).toBe(engine.countPromptTokens(turns));
    expect(engine.stats().imageCache.entries).toBe(1);
    expect(engine.manifest.name).toBe('toy');
  });

  it('passes user errors through with their code', async () => {
    const error = await engine.chat({ imageHash: files.add(new Uint8Array([1, 2, 3])), turns: [{ user: 'the green one' }] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toMatch(/^image_/);
  });

  it('fails the turn in flight when the thread dies, then starts a new thread for the next', async () => {
    // The thread is killed between graph runs, and the turn sent as it dies. Killed in
    // the middle of one, onnxruntime-node or sharp may abort the whole process (their
    // native completion throws into the torn-down thread: "terminate called after
    // throwing an instance of 'Napi::Error'"), which no JavaScript can catch.
    const dying = engine.crashThreadForTests();
    const inFlight = engine.chat({ imageHash: files.add(image), turns: [{ user: 'the green one' }] });
    await dying;
    await expect(inFlight).rejects.toThrow(/model engine stopped/);
    const next = await engine.chat({ imageHash: files.add(image), turns: [{ user: 'the green one' }] });
    expect(next.segments[0]!.area).toBe(greenArea);
  });

  it('refuses a missing pack before starting a thread', async () => {
    await expect(EngineThread.open(`${pack.dir}-missing`, { images: files })).rejects.toMatchObject({ code: 'model_pack_missing' });
  });
});
