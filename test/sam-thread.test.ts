import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';
import { drawShapes, encodeImage, makeToyPack } from './helpers/toy.js';

const files = new ImagesInMemory();
let pack: { dir: string; cleanup: () => Promise<void> };
let onThread: Engine;
let here: Engine;

beforeAll(async () => {
  pack = await makeToyPack();
  [onThread, here] = await Promise.all([Engine.open(pack.dir, { images: files, samThread: true }), Engine.open(pack.dir, { images: files })]);
});
afterAll(async () => {
  await Promise.all([onThread.close(), here.close()]);
  await pack.cleanup();
});

describe('the SAM image encoder on a thread of its own', () => {
  it('gives the same answer and masks as on the engine thread, and its run is listed with the chat', async () => {
    const scene = drawShapes(400, 300, [
      { colour: 'red', kind: 'rect', x: 30, y: 40, w: 120, h: 90 },
      { colour: 'blue', kind: 'circle', x: 220, y: 140, w: 120, h: 120 },
    ]);
    const imageHash = files.add(await encodeImage(scene, 'png'));
    for (const turns of [[{ user: 'the red one' }], [{ user: 'the red one', assistant: 'Sure, it is [SEG].' }, { user: 'and the blue one?' }]]) {
      const [threaded, inline] = [await onThread.chat({ imageHash, turns }), await here.chat({ imageHash, turns })];
      expect(threaded.text).toBe(inline.text);
      expect(threaded.segments).toEqual(inline.segments);
      expect(threaded.segments[0]!.area).toBeGreaterThan(0);
    }
    // This engine's own pack has no SAM encoder session: it runs on the other thread.
    expect(onThread.pack.sessions.samImageEncoder).toBeUndefined();
    expect(here.pack.sessions.samImageEncoder).toBeDefined();
    // A new image: the encoder runs (on its thread), and the chat reports that run.
    const other = files.add(await encodeImage(drawShapes(200, 160, [{ colour: 'green', kind: 'rect', x: 20, y: 20, w: 80, h: 60 }]), 'png'));
    const result = await onThread.chat({ imageHash: other, turns: [{ user: 'the green one' }] });
    expect(result.graphRuns.filter((run) => run.graph === 'samImageEncoder')).toHaveLength(1);
    expect(result.timings.samEncoder).toBeGreaterThan(0);
    expect(result.segments[0]!.bbox).toEqual([20, 20, 80, 60]);
  });
});
