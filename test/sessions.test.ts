import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type KvBackend,
  type Session,
  type StoredTurn,
  cliKey,
  conversationKey,
  createImageStore,
  createSessionStore,
  imageContext,
  openConversationStores,
  openKvBackend,
  sha256Hex,
  trimHistory,
} from '../src/conversation/index.js';
import { UserInputError } from '../src/errors.js';
import { type RedisServer, redisAvailability, startRedis } from './helpers/redis.js';

const IDLE_MINUTES = 60;
const IDLE_MS = IDLE_MINUTES * 60_000;

function turn(user: string, imageHash = 'a'.repeat(64)): StoredTurn {
  return {
    user,
    assistant: `answer to ${user}`,
    segments: [{ rle: { size: [2, 2], counts: '13' }, bbox: [0, 0, 1, 1], area: 1, score: 0.9, colour: '#ff0000' }],
    imageHash,
    at: 1_700_000_000_000,
  };
}

describe('conversation keys', () => {
  it('names the surface, then its parts in order', () => {
    expect(conversationKey('slack', { teamId: 'T1', channelId: 'C2', threadTs: '1712345678.123456' })).toBe('slack:T1:C2:1712345678.123456');
    expect(cliKey('demo')).toBe('cli:demo');
  });

  it('refuses empty parts and separators that would make two conversations collide', () => {
    expect(() => conversationKey('discord', { channelId: '', rootMessageId: '1' })).toThrow(/channelId/);
    // Else discord:1:2 + 3 and discord:1 + 2:3 would be one conversation.
    expect(() => conversationKey('discord', { channelId: '1:2', rootMessageId: '3' })).toThrow(RangeError);
    expect(() => conversationKey('slack', { teamId: 'T', channelId: 'C:x', threadTs: '1.2' })).toThrow(/channelId/);
    expect(() => conversationKey('web', { sessionId: 'a b' })).toThrow(RangeError);
    expect(() => conversationKey('we:b', { sessionId: 'a' })).toThrow(/surface/);
    expect(() => conversationKey('web', {})).toThrow(RangeError);
    expect(() => cliKey('x'.repeat(101))).toThrow(RangeError);
  });
});

describe('imageContext and trimHistory', () => {
  const session = (turns: StoredTurn[]): Session => ({
    key: 'cli:t',
    imageHash: turns.at(-1)?.imageHash,
    turns,
    createdAt: 0,
    updatedAt: 0,
  });

  it('a new image starts a new context', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    const turns = [turn('1', a), turn('2', a), turn('3', b), turn('4', b)];
    expect(imageContext(session(turns)).map((t) => t.user)).toEqual(['3', '4']);
    // The same image again after another one is a new context too: only the trailing run counts.
    expect(imageContext(session([...turns, turn('5', a)])).map((t) => t.user)).toEqual(['5']);
    expect(imageContext({ key: 'cli:t', turns: [], createdAt: 0, updatedAt: 0 })).toEqual([]);
  });

  it('keeps the image turn and as many of the newest turns as fit', () => {
    const turns = ['img', 't1', 't2', 't3', 't4', 'new'];
    expect(trimHistory(turns, (t) => t.length <= 4)).toEqual(['img', 't3', 't4', 'new']);
    expect(trimHistory(turns, () => true)).toEqual(turns);
  });

  it('returns [image turn, new turn] even when that does not fit', () => {
    expect(trimHistory(['img', 't1', 't2', 'new'], () => false)).toEqual(['img', 'new']);
    expect(trimHistory(['img'], () => false)).toEqual(['img']);
  });
});

it('refuses a store URL it cannot use, naming store.url', async () => {
  const error = await openKvBackend('postgres://x').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(UserInputError);
  expect((error as UserInputError).code).toBe('config_invalid');
  expect((error as UserInputError).message).toContain('store.url');
});

/** The same behaviour on every backend; `url()` is the same within a test, so a reopen finds the data. */
function storeSuite(name: string, url: () => string, options: { nativeExpiry: boolean }): void {
  describe(`stores on ${name}`, () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('appends, gets and resets a session', async () => {
      const stores = await openConversationStores(url(), { idleMinutes: IDLE_MINUTES });
      try {
        const key = conversationKey('discord', { channelId: '10', rootMessageId: '20' });
        expect(await stores.sessions.get(key)).toBeUndefined();
        await stores.sessions.appendTurn(key, turn('first'));
        const after = await stores.sessions.appendTurn(key, turn('second', 'b'.repeat(64)));
        expect(after.turns.map((t) => t.user)).toEqual(['first', 'second']);
        const stored = await stores.sessions.get(key);
        expect(stored).toEqual(after);
        expect(stored?.imageHash).toBe('b'.repeat(64));
        expect(stored?.turns[0].segments[0].rle).toEqual({ size: [2, 2], counts: '13' });
        await stores.sessions.reset(key);
        expect(await stores.sessions.get(key)).toBeUndefined();
      } finally {
        await stores.close();
      }
    });

    it('loses no turn when appends to one key race', async () => {
      const stores = await openConversationStores(url(), { idleMinutes: IDLE_MINUTES });
      try {
        const key = conversationKey('web', { sessionId: 'race' });
        await Promise.all(Array.from({ length: 20 }, (_, i) => stores.sessions.appendTurn(key, turn(`q${i}`))));
        const users = (await stores.sessions.get(key))?.turns.map((t) => t.user);
        expect(users).toEqual(Array.from({ length: 20 }, (_, i) => `q${i}`));
      } finally {
        await stores.close();
      }
    });

    it('keeps conversations across a restart', async () => {
      const key = conversationKey('slack', { teamId: 'T1', channelId: 'C1', threadTs: '1.2' });
      const first = await createSessionStore(url(), { idleMinutes: IDLE_MINUTES });
      await first.appendTurn(key, turn('before restart'));
      await first.close();
      const second = await createSessionStore(url(), { idleMinutes: IDLE_MINUTES });
      try {
        expect((await second.get(key))?.turns.map((t) => t.user)).toEqual(['before restart']);
      } finally {
        await second.close();
      }
    });

    it('expires a session after the idle time, counted from its last write', async () => {
      const stores = await openConversationStores(url(), { idleMinutes: IDLE_MINUTES });
      try {
        vi.useFakeTimers({ toFake: ['Date'] });
        const key = cliKey('idle');
        await stores.sessions.appendTurn(key, turn('1'));
        vi.setSystemTime(Date.now() + IDLE_MS * 0.75);
        await stores.sessions.appendTurn(key, turn('2'));
        vi.setSystemTime(Date.now() + IDLE_MS * 0.75);
        expect((await stores.sessions.get(key))?.turns).toHaveLength(2);
        vi.setSystemTime(Date.now() + IDLE_MS * 0.5);
        expect(await stores.sessions.get(key)).toBeUndefined();
      } finally {
        await stores.close();
      }
    });

    it('remembers a dedupe key only once', async () => {
      const stores = await openConversationStores(url(), { idleMinutes: IDLE_MINUTES });
      try {
        const results = await Promise.all([1, 2, 3].map(() => stores.sessions.remember('Ev1', 60_000)));
        expect(results.filter(Boolean)).toHaveLength(1);
        expect(await stores.sessions.remember('Ev1', 60_000)).toBe(false);
        expect(await stores.sessions.remember('Ev2', 60_000)).toBe(true);
        if (!options.nativeExpiry) {
          vi.useFakeTimers({ toFake: ['Date'] });
          vi.setSystemTime(Date.now() + 60_001);
          expect(await stores.sessions.remember('Ev1', 60_000)).toBe(true);
        }
      } finally {
        await stores.close();
      }
    });

    it('stores an image once, and its bytes round-trip exactly', async () => {
      const backend = await openKvBackend(url());
      let writes = 0;
      let reads = 0;
      const counting: KvBackend = new Proxy(backend, {
        get(target, property, receiver) {
          if (property === 'setBytes') {
            return (...args: Parameters<KvBackend['setBytes']>) => {
              writes++;
              return target.setBytes(...args);
            };
          }
          if (property === 'getBytes') {
            return (key: string) => {
              reads++;
              return target.getBytes(key);
            };
          }
          const value: unknown = Reflect.get(target, property, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const images = await createImageStore(counting, { idleMinutes: IDLE_MINUTES });
      try {
        const every = new Uint8Array(512).map((_, i) => i % 256);
        // A view into a larger buffer: only the viewed bytes may be stored.
        const view = new Uint8Array([9, 9, ...every, 9]).subarray(2, 2 + every.length);
        const hash = await images.put(every);
        expect(hash).toBe(sha256Hex(every));
        expect(await images.put(view)).toBe(hash);
        expect(await Promise.all([images.put(every), images.put(every)])).toEqual([hash, hash]);
        expect(writes).toBe(1);
        // Read back right after storing (as a turn does): from memory, not the store.
        const readsBefore = reads;
        const back = await images.get(hash);
        expect(reads).toBe(readsBefore);
        expect(back).toBeInstanceOf(Uint8Array);
        expect(Array.from(back ?? [])).toEqual(Array.from(every));
        expect(await images.get('0'.repeat(64))).toBeUndefined();
        expect(await images.get('not a hash')).toBeUndefined();
        expect(await images.has(hash)).toBe(true);
        expect(await images.has('0'.repeat(64))).toBe(false);
        await expect(images.put(new Uint8Array(0))).rejects.toMatchObject({ code: 'image_empty' });
      } finally {
        await images.close();
        await backend.close();
      }
    });

    it('keeps an image as long as a session still reads it', async () => {
      const stores = await openConversationStores(url(), { idleMinutes: IDLE_MINUTES });
      try {
        vi.useFakeTimers({ toFake: ['Date'] });
        const hash = await stores.images.put(new Uint8Array([1, 2, 3]));
        for (let i = 0; i < 4; i++) {
          vi.setSystemTime(Date.now() + IDLE_MS * 0.9);
          expect(await stores.images.get(hash)).toEqual(new Uint8Array([1, 2, 3]));
        }
        vi.setSystemTime(Date.now() + IDLE_MS * 2 + 1);
        expect(await stores.images.get(hash)).toBeUndefined();
      } finally {
        await stores.close();
      }
    });
  });
}

describe('SQLite', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lisa-sessions-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  // A fresh file per test, in a directory that does not exist yet (the store creates it).
  let n = 0;
  let current = '';
  beforeEach(() => {
    current = `sqlite://${path.join(dir, `nested-${n++}`, 'lisa.sqlite')}`;
  });
  storeSuite('SQLite', () => current, { nativeExpiry: false });
});

const redis = redisAvailability();
describe.skipIf(redis.skip)('Redis', () => {
  let server: RedisServer | undefined;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await server?.stop();
  });
  storeSuite('Redis', () => server!.url, { nativeExpiry: true });
});
