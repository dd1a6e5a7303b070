import { copyFile, cp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { availableParallelism } from 'node:os';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openPack, releasePack } from '../src/engine/pack.js';
import { UserInputError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import { makeToyPack } from './helpers/toy.js';

let toy: { dir: string; cleanup: () => Promise<void> };
let n = 0;

async function copyOfToy(): Promise<string> {
  const dir = path.join(path.dirname(toy.dir), `copy-${n++}`);
  await cp(toy.dir, dir, { recursive: true });
  return dir;
}

async function refusal(dir: string): Promise<UserInputError> {
  const error = await openPack(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UserInputError);
  return error as UserInputError;
}

beforeAll(async () => {
  toy = await makeToyPack();
});
afterAll(() => toy.cleanup());

describe('model pack loading', () => {
  it('refuses a missing pack and says how to make one', async () => {
    const error = await refusal(path.join(toy.dir, 'nope'));
    expect(error.code).toBe('model_pack_missing');
    expect(error.message).toContain('lisa-bot models toy');
  });

  it('refuses a manifest that is not JSON, naming the file', async () => {
    const dir = await copyOfToy();
    await writeFile(path.join(dir, 'lisa.json'), '{ "format": ');
    const error = await refusal(dir);
    expect(error.code).toBe('model_pack_invalid');
    expect(error.message).toContain(path.join(dir, 'lisa.json'));
  });

  it('refuses a manifest with a bad key, naming the key', async () => {
    const dir = await copyOfToy();
    const manifest = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(path.join(dir, 'lisa.json'), 'utf8')));
    manifest.decoder.layers = 'one';
    await writeFile(path.join(dir, 'lisa.json'), JSON.stringify(manifest));
    expect((await refusal(dir)).message).toContain('decoder.layers');
  });

  it('refuses a graph whose tensors break the contract, naming the file and the tensor', async () => {
    const dir = await copyOfToy();
    await copyFile(path.join(dir, 'embed_tokens.onnx'), path.join(dir, 'seg_projection.onnx'));
    const error = await refusal(dir);
    expect(error.message).toContain('seg_projection.onnx');
    expect(error.message).toContain('"seg_hidden"');
  });

  it('refuses a graph with the wrong element type', async () => {
    const float16 = await makeToyPack('float16');
    const dir = await copyOfToy();
    await copyFile(path.join(float16.dir, 'embed_tokens.onnx'), path.join(dir, 'embed_tokens.onnx'));
    await float16.cleanup();
    const error = await refusal(dir);
    expect(error.message).toMatch(/embed_tokens\.onnx: output "inputs_embeds" is float16 .*expected float32/);
  });

  it('refuses a missing or corrupt graph file', async () => {
    const missing = await copyOfToy();
    await rm(path.join(missing, 'decoder.onnx'));
    expect((await refusal(missing)).message).toContain('decoder.onnx is missing');
    const corrupt = await copyOfToy();
    await writeFile(path.join(corrupt, 'decoder.onnx'), 'not a model');
    expect((await refusal(corrupt)).message).toContain('decoder.onnx cannot be loaded');
  });

  it('falls back to cpu, and says so, when a GPU provider cannot load', async () => {
    const lines: string[] = [];
    // Libraries not installed (npm ci's default) is logged at info: a CPU host's usual state, not a warning.
    const logger = createLogger({
      level: 'info',
      destination: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }),
    });
    const pack = await openPack(toy.dir, { providers: ['cuda', 'cpu'], logger });
    await releasePack(pack);
    if (pack.provider === 'cuda') return; // a GPU host with the CUDA libraries: nothing fell back
    expect(pack.provider).toBe('cpu');
    expect(lines.join('')).toContain('execution provider cuda unavailable');
  });

  it('gives every graph the configured CPU threads, and one per usable core by default', async () => {
    const create = vi.spyOn(ort.InferenceSession, 'create');
    try {
      await releasePack(await openPack(toy.dir, { providers: ['cpu'], cpuThreads: 3 }));
      await releasePack(await openPack(toy.dir, { providers: ['cpu'] }));
      const threads = create.mock.calls.map((call) => (call[1] as ort.InferenceSession.SessionOptions).intraOpNumThreads);
      expect(threads).toEqual([...Array(6).fill(3), ...Array(6).fill(availableParallelism())]);
    } finally {
      create.mockRestore();
    }
  });
});
