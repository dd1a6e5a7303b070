import { afterEach, describe, expect, it, vi } from 'vitest';
import { largeBufferCollections } from '../src/memory/collect.js';
import { LARGE_KEEP_MS, LARGE_SCRATCH_BYTES, ScratchBuffer, scratchArrayBuffer, scratchSharedBuffer, withSharedBytes } from '../src/memory/scratch.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('ScratchBuffer', () => {
  it('hands the same memory back turn after turn, and a new buffer while it is taken', () => {
    const scratch = scratchArrayBuffer();
    const first = scratch.take(1000);
    const meanwhile = scratch.take(10);
    expect(meanwhile).not.toBe(first);
    scratch.give(first);
    expect(scratch.take(800)).toBe(first);
  });

  it('allocates anew when the kept buffer is too small, and keeps the larger one', () => {
    const scratch = scratchArrayBuffer();
    const small = scratch.take(100);
    scratch.give(small);
    const large = scratch.take(200);
    expect(large).not.toBe(small);
    expect(large.byteLength).toBe(200);
    scratch.give(large);
    scratch.give(small);
    expect(scratch.take(150)).toBe(large);
  });

  it('keeps neither buffers over its size limit nor transferred ones', () => {
    const scratch = scratchArrayBuffer(1000);
    const huge = scratch.take(2000);
    scratch.give(huge);
    expect(scratch.take(2000)).not.toBe(huge);
    const moved = scratch.take(100);
    structuredClone(moved, { transfer: [moved] });
    scratch.give(moved);
    expect(scratch.take(1).byteLength).toBe(1);
  });

  it('lets go of an idle buffer after the keep time', () => {
    vi.useFakeTimers();
    const scratch = new ScratchBuffer((bytes) => new ArrayBuffer(bytes), 1e9, 60_000);
    const buffer = scratch.take(100);
    scratch.give(buffer);
    vi.advanceTimersByTime(59_000);
    const again = scratch.take(100);
    expect(again).toBe(buffer);
    scratch.give(again);
    vi.advanceTimersByTime(60_001);
    expect(scratch.take(100)).not.toBe(buffer);
  });

  it("lets go of a large image's buffer soon, not after minutes, and collects; a smaller one stays", () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate'] });
    const large = scratchArrayBuffer();
    const small = scratchArrayBuffer();
    const big = large.take(LARGE_SCRATCH_BYTES);
    const little = small.take(LARGE_SCRATCH_BYTES - 1);
    large.give(big);
    small.give(little);
    const collections = largeBufferCollections();
    vi.advanceTimersByTime(LARGE_KEEP_MS + 1);
    expect(largeBufferCollections()).toBeGreaterThan(collections);
    expect(large.take(LARGE_SCRATCH_BYTES)).not.toBe(big);
    expect(small.take(LARGE_SCRATCH_BYTES - 1)).toBe(little);
  });
});

describe('withSharedBytes', () => {
  it('lends a copy in reused shared memory, and a second one while the first is lent', async () => {
    const scratch = scratchSharedBuffer();
    const file = new Uint8Array([1, 2, 3, 4, 5]);
    let firstMemory: ArrayBufferLike | undefined;
    await withSharedBytes(scratch, file, async (shared) => {
      expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect([...shared]).toEqual([1, 2, 3, 4, 5]);
      firstMemory = shared.buffer;
      // Lent out: a turn meanwhile must not write over it.
      await withSharedBytes(scratch, new Uint8Array([9, 9]), async (other) => {
        expect(other.buffer).not.toBe(firstMemory);
      });
      expect([...shared]).toEqual([1, 2, 3, 4, 5]);
    });
    await withSharedBytes(scratch, new Uint8Array([7, 8, 9]), async (shared) => {
      expect(shared.buffer).toBe(firstMemory);
      expect([...shared]).toEqual([7, 8, 9]);
    });
  });

  it('passes shared bytes through as they are, and gives the memory back when `use` fails', async () => {
    const scratch = scratchSharedBuffer();
    const already = new Uint8Array(new SharedArrayBuffer(4), 1, 2);
    await withSharedBytes(scratch, already, async (shared) => expect(shared).toBe(already));
    let lent: ArrayBufferLike | undefined;
    await expect(
      withSharedBytes(scratch, new Uint8Array(10), async (shared) => {
        lent = shared.buffer;
        throw new Error('decode failed');
      }),
    ).rejects.toThrow('decode failed');
    await withSharedBytes(scratch, new Uint8Array(10), async (shared) => expect(shared.buffer).toBe(lent));
  });
});
