import { describe, expect, it } from 'vitest';
import { TurnStore, type TurnView } from '../adapters/web/progress.js';
import type { Reply } from '../src/assistant/types.js';

function reply(overlayBytes: number): Reply {
  return {
    jobId: 'web:x',
    conversationKey: 'web:s',
    text: 'Sure, it is \u{1F7E5}.',
    rawText: 'Sure, it is [SEG].',
    ids: [],
    overlay: {
      data: Buffer.alloc(overlayBytes),
      contentType: 'image/png',
      format: 'png',
      width: 1,
      height: 1,
      filename: 'lisa-overlay.png',
    },
    segments: [
      {
        index: 0,
        colour: { rgb: [221, 46, 68], hex: '#dd2e44', emoji: '\u{1F7E5}', name: 'red' },
        bbox: [1, 2, 3, 4],
        area: 12,
        score: 0.9,
        rle: { size: [4, 4], counts: '0' },
        empty: false,
      },
    ],
    turnIndex: 0,
    timings: {
      imageDecode: 0, clipPreprocess: 0, samPreprocess: 0, visionEncoder: 0, prefill: 0, decodeSteps: 0,
      segProjection: 0, samEncoder: 0, maskDecoder: 0, postprocess: 0, total: 0,
    },
  };
}

describe('web turn store', () => {
  it('maps progress and the reply to the public view, for the owning session only', () => {
    const store = new TurnStore();
    const seen: TurnView[] = [];
    store.create('t1', 'alice', new AbortController());
    store.subscribe('t1', 'alice', (v) => seen.push(v));
    expect(store.subscribe('t1', 'bob', () => undefined)).toBeUndefined();
    store.progress('t1', { type: 'queued', position: 3 });
    store.progress('t1', { type: 'started' });
    store.finish('t1', reply(10));
    expect(seen.map((v) => v.state)).toEqual(['queued', 'working', 'done']);
    expect(seen[0]).toEqual({ state: 'queued', position: 3 });
    const view = store.view('t1', 'alice')!;
    expect(view.reply).toEqual({
      text: 'Sure, it is \u{1F7E5}.',
      segments: [{ index: 0, colour: { hex: '#dd2e44', emoji: '\u{1F7E5}', name: 'red' }, bbox: [1, 2, 3, 4], area: 12, empty: false }],
      overlayUrl: '/api/turns/t1/overlay',
      demoNotice: undefined,
    });
    // Nothing internal leaks into the view (RLE, score, raw text, timings).
    expect(JSON.stringify(view)).not.toMatch(/rle|score|rawText|timings/);
    expect(store.view('t1', 'bob')).toBeUndefined();
    expect(store.view('t1', undefined)).toBeUndefined();
    expect(store.overlay('t1', 'alice')?.data.length).toBe(10);
    expect(store.overlay('t1', 'bob')).toBeUndefined();
    // A final state is final.
    store.fail('t1', { code: 'internal', message: 'late' });
    expect(store.view('t1', 'alice')!.state).toBe('done');
  });

  it('keeps at most maxTurns, dropping the oldest', () => {
    const store = new TurnStore({ maxTurns: 3 });
    for (const id of ['a', 'b', 'c', 'd']) store.create(id, 's', new AbortController());
    expect(store.size).toBe(3);
    expect(store.view('a', 's')).toBeUndefined();
    expect(store.view('d', 's')?.state).toBe('queued');
  });

  it('bounds the overlay bytes it holds', () => {
    const store = new TurnStore({ maxOverlayBytes: 250 });
    for (const id of ['a', 'b', 'c']) {
      store.create(id, 's', new AbortController());
      store.finish(id, reply(100));
    }
    expect(store.view('a', 's')).toBeUndefined();
    expect(store.overlay('b', 's')).toBeDefined();
    expect(store.overlay('c', 's')).toBeDefined();
  });

  it('forgets finished turns after the TTL, never one still waiting', () => {
    let now = 0;
    const store = new TurnStore({ ttlMs: 1000, now: () => now });
    store.create('done', 's', new AbortController());
    store.finish('done', reply(1));
    store.create('waiting', 's', new AbortController());
    now = 5000;
    expect(store.view('done', 's')).toBeUndefined();
    expect(store.view('waiting', 's')?.state).toBe('queued');
  });

  it('tells a listener of an evicted turn that it is gone', () => {
    const store = new TurnStore({ maxTurns: 1 });
    const seen: TurnView[] = [];
    store.create('a', 's', new AbortController());
    store.subscribe('a', 's', (v) => seen.push(v));
    store.create('b', 's', new AbortController());
    expect(seen).toEqual([{ state: 'error', error: { code: 'expired', message: expect.stringMatching(/ask again/) } }]);
  });

  it("cancels a session's unfinished turns only", () => {
    const store = new TurnStore();
    const controllers = { a: new AbortController(), b: new AbortController(), c: new AbortController() };
    store.create('a', 'alice', controllers.a);
    store.create('b', 'alice', controllers.b);
    store.create('c', 'bob', controllers.c);
    store.finish('b', reply(1));
    store.cancelSession('alice');
    expect([controllers.a.signal.aborted, controllers.b.signal.aborted, controllers.c.signal.aborted]).toEqual([true, false, false]);
  });
});
