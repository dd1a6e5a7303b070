/**
 * The checkpoint readers against files torch itself wrote (and a few written
 * by hand where torch cannot: safetensors, a hostile pickle, a sparse 4.4 GB
 * ZIP64 archive). Every value read must equal what torch holds.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserInputError } from '../src/errors.js';
import { toFloat32 } from '../models/converter/checkpoint/dtypes.js';
import { openCheckpoint } from '../models/converter/checkpoint/index.js';
import { readStateDict } from '../models/converter/checkpoint/pickle.js';
import type { WeightSource } from '../models/converter/weights.js';
import { pythonAvailability } from './helpers/python.js';

const bits16 = (...values: number[]) => new Uint8Array(new Uint16Array(values).buffer);

/** Same values, NaN equal to NaN and -0 distinct from 0 (Object.is per element). */
function expectSameValues(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const mismatch = [...actual].findIndex((v, i) => !Object.is(v, expected[i]));
  expect(mismatch === -1 ? 'all equal' : `${what}[${mismatch}]: ${actual[mismatch]} != ${expected[mismatch]}`).toBe('all equal');
}

async function failure(promise: Promise<unknown>): Promise<UserInputError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserInputError);
  return error as UserInputError;
}

describe('element types', () => {
  it('widens float16 exactly, subnormals and specials included', () => {
    const values = toFloat32(bits16(0x0001, 0x03ff, 0x3c00, 0x7bff, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xc100), 'float16');
    expect([...values]).toEqual([2 ** -24, 1023 * 2 ** -24, 1, 65504, -0, Infinity, -Infinity, Number.NaN, -2.5]);
    expect(Object.is(values[4], -0)).toBe(true);
  });

  it('widens bfloat16 by its bits', () => {
    expect([...toFloat32(bits16(0x3f80, 0xc040, 0x0001, 0x7f80), 'bfloat16')]).toEqual([1, -3, 2 ** -133, Infinity]);
  });
});

describe('pickle allow-list', () => {
  const pickle = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

  it('refuses a pickle naming any other callable, before calling anything', async () => {
    // {'w': builtins.eval('1')} in protocol 2
    const error = await failure(Promise.resolve().then(() => readStateDict(pickle("\x80\x02}X\x01\x00\x00\x00wcbuiltins\neval\nX\x01\x00\x00\x001\x85Rs."), 'x.bin')));
    expect(error.code).toBe('checkpoint_unsafe');
    expect(error.message).toBe('x.bin: refusing to load: the pickle calls builtins.eval, which is not a tensor (only tensors are read, never code).');
  });

  it('refuses opcodes torch.save does not write', async () => {
    // INST builds an object from a class by name (protocol 0)
    const error = await failure(Promise.resolve().then(() => readStateDict(pickle('\x80\x02(itorch\nFloatStorage\n.'), 'x.bin')));
    expect(error.code).toBe('checkpoint_invalid');
    expect(error.message).toMatch(/^x\.bin: .*opcode 0x69/);
  });
});

const py = pythonAvailability();

describe.skipIf(py.skip)('checkpoint files', () => {
  let dir: string;
  let manifest: { layouts: Record<string, string[]>; zip64: Record<string, number[]> | null };
  let expected: Record<string, { dtype: string; shape: number[] }>;
  const opened: WeightSource[] = [];
  const openDir = async (name: string) => {
    const source = await openCheckpoint(path.join(dir, name));
    opened.push(source);
    return source;
  };
  const expectedValues = async (name: string) => new Float32Array(new Uint8Array(await readFile(path.join(dir, 'expected', `${name}.f32`))).buffer);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-checkpoints-'));
    execFileSync(py.python, ['test/fixtures/make_checkpoints.py', '--out', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8'));
    expected = JSON.parse(await readFile(path.join(dir, 'expected.json'), 'utf8'));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(['bin', 'bin-archive', 'safetensors', 'sharded-bin', 'sharded-safetensors'])('reads every tensor of %s as torch has it', async (layout) => {
    const source = await openDir(layout);
    expect(source.names).toEqual(manifest.layouts[layout]);
    for (const name of source.names) {
      const info = source.info(name)!;
      expect({ dtype: info.dtype, shape: info.shape }, name).toEqual(expected[name]);
      expectSameValues(await source.readFloat32(name), await expectedValues(name), `${layout} ${name}`);
    }
  });

  it('names the shard each tensor is in', async () => {
    const source = await openDir('sharded-bin');
    expect(source.info('model.embed_tokens.weight')!.file).toBe('pytorch_model-00001-of-00002.bin');
    expect(source.info('model.half')!.file).toBe('pytorch_model-00002-of-00002.bin');
    expect(source.info('model.nothing')).toBeUndefined();
    const error = await failure(source.readFloat32('model.nothing'));
    expect(error.code).toBe('checkpoint_invalid');
    expect(error.message).toContain('"model.nothing"');
  });

  it('opens a weight file given directly', async () => {
    const source = await openDir('bin/pytorch_model.bin');
    expect(source.names).toEqual(manifest.layouts.bin);
  });

  it('prefers safetensors when a folder has both', async () => {
    const source = await openDir('both');
    expect([...(await source.readFloat32('which'))]).toEqual([1]);
  });

  it.each(['evil', 'evil-v4'])('refuses the pickle in %s without running it', async (layout) => {
    const error = await failure(openCheckpoint(path.join(dir, layout)));
    expect(error.code).toBe('checkpoint_unsafe');
    expect(error.message).toBe(
      'pytorch_model.bin: refusing to load: the pickle calls posix.system, which is not a tensor (only tensors are read, never code).',
    );
    expect(existsSync(path.join(dir, layout, 'PWNED'))).toBe(false);
  });

  it('rejects truncated files with one line naming the file', async () => {
    const bin = await failure(openCheckpoint(path.join(dir, 'truncated-bin')));
    expect(bin.code).toBe('checkpoint_invalid');
    expect(bin.message).toMatch(/^pytorch_model\.bin is not a readable PyTorch checkpoint: it is not a complete zip archive/);
    const st = await failure(openCheckpoint(path.join(dir, 'truncated-safetensors')));
    expect(st.code).toBe('checkpoint_invalid');
    expect(st.message).toMatch(/^model\.safetensors is not a readable safetensors file: .*truncated/);
    expect(st.message).not.toContain('\n');
  });

  it('names a missing shard and the index that lists it', async () => {
    const error = await failure(openCheckpoint(path.join(dir, 'missing-shard')));
    expect(error.code).toBe('checkpoint_missing');
    expect(error.message).toBe(
      `pytorch_model-00002-of-00002.bin is missing from ${path.join(dir, 'missing-shard')} (pytorch_model.bin.index.json lists it); download it again.`,
    );
  });

  it('says what it looked for in a folder without weights', async () => {
    const error = await failure(openCheckpoint(path.join(dir, 'empty')));
    expect(error.code).toBe('checkpoint_missing');
    expect(error.message).toBe(
      `No weights in ${path.join(dir, 'empty')}: looked for model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json.`,
    );
    expect((await failure(openCheckpoint(path.join(dir, 'nowhere')))).code).toBe('checkpoint_missing');
  });

  it("reads only a tensor's own bytes", async () => {
    const probe = await open(path.join(dir, 'expected.json'));
    const read = vi.spyOn(Object.getPrototypeOf(probe), 'read');
    await probe.close();
    const source = await openDir('bin');
    const requested = () => read.mock.calls.reduce((sum, call) => sum + (call[2] as number), 0);
    await source.readFloat32('model.rows'); // 2x4 float32 at offset 4 of a 3x4 storage
    expect(requested()).toBe(32);
    read.mockClear();
    await source.readFloat32('model.base_t'); // the transposed view spans its storage exactly
    expect(requested()).toBe(48);
  });

  it('reads a 4.4 GB ZIP64 archive in place', async (ctx) => {
    if (!manifest.zip64) {
      console.warn('this file system does not keep holes in sparse files; skipping the 4.4 GB ZIP64 test');
      ctx.skip();
    }
    const probe = await open(path.join(dir, 'expected.json'));
    const read = vi.spyOn(Object.getPrototypeOf(probe), 'read');
    await probe.close();
    const source = await openDir('zip64');
    expect(source.names).toEqual(['tail', 'tail_t', 'after', 'far']);
    expect(source.info('tail')).toEqual({ name: 'tail', dtype: 'float32', shape: [4, 4], file: 'pytorch_model.bin' });
    for (const name of source.names) {
      read.mockClear();
      expect([...(await source.readFloat32(name))], name).toEqual(manifest.zip64![name]);
      const requested = read.mock.calls.reduce((sum, call) => sum + (call[2] as number), 0);
      expect(requested, name).toBe(source.info(name)!.shape.reduce((a, b) => a * b, 1) * 4);
    }
  });
});
