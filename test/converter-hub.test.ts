import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UserInputError } from '../src/errors.js';
import { parseHubId, resolveModelSource, type HubProgressEvent, type ResolveOptions } from '../models/converter/hub.js';
import { stderrHubProgress } from '../models/converter/hub-progress.js';
import { FakeHub, gitOid, sha256, type FakeRepo } from './helpers/fake-hub.js';

const COMMIT = 'a'.repeat(40);
const blob = (size: number, seed: number) => Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed * 7) & 255));
const json = (value: unknown) => ({ data: Buffer.from(JSON.stringify(value)) });

function lisaRepo(): FakeRepo {
  const index = { metadata: { total_size: 0 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } };
  const binIndex = { weight_map: { 'a.weight': 'pytorch_model-00001-of-00002.bin', 'b.weight': 'pytorch_model-00002-of-00002.bin' } };
  return {
    sha: COMMIT,
    files: {
      '.gitattributes': { data: Buffer.from('*.bin filter=lfs\n') },
      'README.md': { data: Buffer.from('# LISA\n') },
      'config.json': json({ mm_hidden_size: 32 }),
      'tokenizer.model': { data: blob(300, 1), lfs: true },
      'added_tokens.json': json({ '[SEG]': 32003 }),
      'special_tokens_map.json': json({}),
      'tokenizer_config.json': json({}),
      'generation_config.json': json({}),
      'model.safetensors.index.json': json(index),
      'model-00001-of-00002.safetensors': { data: blob(200_000, 2), lfs: true },
      'model-00002-of-00002.safetensors': { data: blob(150_000, 3), lfs: true },
      'pytorch_model.bin.index.json': json(binIndex),
      'pytorch_model-00001-of-00002.bin': { data: blob(5000, 4), lfs: true },
      'pytorch_model-00002-of-00002.bin': { data: blob(5000, 5), lfs: true },
      'flax_model.msgpack': { data: blob(5000, 6), lfs: true },
    },
  };
}

function clipRepo(weights: 'both' | 'bin'): FakeRepo {
  return {
    sha: 'c'.repeat(40),
    files: {
      'config.json': json({ vision_config: {} }),
      'preprocessor_config.json': json({ crop_size: 224 }),
      'pytorch_model.bin': { data: blob(40_000, 7), lfs: true },
      ...(weights === 'both' ? { 'model.safetensors': { data: blob(30_000, 8), lfs: true } } : {}),
      'tf_model.h5': { data: blob(5000, 9), lfs: true },
      'flax_model.msgpack': { data: blob(5000, 10), lfs: true },
      'tokenizer.json': json({}),
    },
  };
}

let hub: FakeHub;
let cache: string;
let events: HubProgressEvent[];
const opts = (extra: Partial<ResolveOptions> = {}): ResolveOptions => ({
  endpoint: hub.url, cacheDir: cache, token: undefined, progress: (e) => events.push(e), retries: 0, retryDelayMs: 0, ...extra,
});
const failure = async (promise: Promise<unknown>): Promise<UserInputError> => {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  expect(error).toBeInstanceOf(UserInputError);
  expect((error as UserInputError).code).toBe('checkpoint_missing');
  expect((error as Error).message).not.toContain('\n');
  return error as UserInputError;
};

beforeAll(async () => {
  hub = await new FakeHub().start();
});
afterAll(async () => {
  await hub.stop();
});
beforeEach(async () => {
  cache = await mkdtemp(path.join(os.tmpdir(), 'lisa-hub-'));
  events = [];
  hub.repos.clear();
  hub.requests.length = 0;
  hub.drops.clear();
  hub.corrupt.clear();
  hub.repos.set('xinlai/LISA-tiny', lisaRepo());
  hub.repos.set('openai/clip-tiny', clipRepo('both'));
});
afterEach(async () => {
  await rm(cache, { recursive: true, force: true });
});

describe('Hub ids and local folders', () => {
  it('parses owner/name[@revision] and refuses what cannot be a repo', () => {
    expect(parseHubId('xinlai/LISA-7B-v1')).toEqual({ repo: 'xinlai/LISA-7B-v1', revision: 'main' });
    expect(parseHubId('openai/clip-vit-large-patch14@refs/pr/3')).toEqual({ repo: 'openai/clip-vit-large-patch14', revision: 'refs/pr/3' });
    for (const bad of ['./a/b', '/abs/x', 'a/b/c', 'x', 'a/b@../../etc', '~/m/n']) expect(parseHubId(bad)).toBeUndefined();
  });

  it('an existing folder is used as it is, even when it reads like owner/name', async () => {
    const dir = path.join(cache, 'xinlai', 'LISA-tiny');
    await mkdir(dir, { recursive: true });
    expect(await resolveModelSource(dir, 'lisa', opts())).toEqual({ dir, fromHub: false });
    expect(hub.requests).toEqual([]);
    await writeFile(path.join(cache, 'file.bin'), 'x');
    expect((await failure(resolveModelSource(path.join(cache, 'file.bin'), 'lisa', opts()))).message).toMatch(/is a file/);
    expect((await failure(resolveModelSource('./no/such/folder', 'lisa', opts()))).message).toMatch(/There is no folder .* not a Hub id/);
  });
});

describe('downloads from the Hub', () => {
  it('fetches only the files a LISA checkpoint needs, into the Hugging Face cache layout', async () => {
    const result = await resolveModelSource('xinlai/LISA-tiny', 'lisa', opts());
    const storage = path.join(cache, 'models--xinlai--LISA-tiny');
    expect(result).toMatchObject({ dir: path.join(storage, 'snapshots', COMMIT), fromHub: true, commit: COMMIT });
    expect((await readFile(path.join(storage, 'refs', 'main'), 'utf8')).trim()).toBe(COMMIT);

    const files = lisaRepo().files;
    const wanted = ['config.json', 'tokenizer.model', 'added_tokens.json', 'special_tokens_map.json', 'tokenizer_config.json',
      'generation_config.json', 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    expect((await readdir(result.dir)).sort()).toEqual([...wanted].sort());
    for (const name of wanted) {
      const data = files[name].data;
      expect(await readFile(path.join(result.dir, name))).toEqual(data);
      // Python's layout: a relative link to a blob named by the sha256 (LFS) or git blob id.
      const blobName = files[name].lfs ? sha256(data) : gitOid(data);
      expect(await readlink(path.join(result.dir, name))).toBe(path.join('..', '..', 'blobs', blobName));
    }
    expect((await readdir(path.join(storage, 'blobs'))).filter((n) => n.endsWith('.incomplete'))).toEqual([]);
    for (const unneeded of ['pytorch_model-00001-of-00002.bin', 'pytorch_model.bin.index.json', 'flax_model.msgpack', 'README.md', '.gitattributes']) {
      expect(hub.requests.filter((r) => r.path.endsWith(`/${unneeded}`))).toEqual([]);
    }
    expect(events.filter((e) => e.type === 'end').map((e) => 'file' in e && e.file).sort()).toEqual([...wanted].sort());
  });

  it('takes model.safetensors over pytorch_model.bin for CLIP, and pytorch_model.bin when it is the only one', async () => {
    const both = await resolveModelSource('openai/clip-tiny', 'clip', opts());
    expect((await readdir(both.dir)).sort()).toEqual(['config.json', 'model.safetensors', 'preprocessor_config.json']);
    for (const unneeded of ['pytorch_model.bin', 'tf_model.h5', 'flax_model.msgpack', 'tokenizer.json']) {
      expect(hub.requests.filter((r) => r.path.endsWith(`/${unneeded}`))).toEqual([]);
    }
    hub.repos.set('openai/clip-bin', clipRepo('bin'));
    const bin = await resolveModelSource('openai/clip-bin@main', 'clip', opts());
    expect((await readdir(bin.dir)).sort()).toEqual(['config.json', 'preprocessor_config.json', 'pytorch_model.bin']);
  });

  it('a second resolve downloads nothing; a pinned commit or an unreachable Hub uses the cache', async () => {
    await resolveModelSource('xinlai/LISA-tiny', 'lisa', opts());
    hub.requests.length = 0;
    events = [];
    const again = await resolveModelSource('xinlai/LISA-tiny', 'lisa', opts());
    expect(hub.requests.every((r) => r.path.startsWith('/api/'))).toBe(true);
    expect(events.every((e) => e.type === 'end' && e.cached)).toBe(true);

    hub.requests.length = 0;
    expect((await resolveModelSource(`xinlai/LISA-tiny@${COMMIT}`, 'lisa', opts())).dir).toBe(again.dir);
    expect(hub.requests).toEqual([]);

    events = [];
    const offline = await resolveModelSource('xinlai/LISA-tiny', 'lisa', opts({ endpoint: await closedEndpoint() }));
    expect(offline.dir).toBe(again.dir);
    expect(events.some((e) => e.type === 'note' && /cannot be reached; using the cached copy/.test(e.message))).toBe(true);
  });

  it('a connection dropped mid-file is continued with a Range request, in the same run or the next', async () => {
    const shard = 'model-00001-of-00002.safetensors';
    const data = lisaRepo().files[shard].data;
    hub.drops.set(shard, { after: 70_000, times: 1 });
    const result = await resolveModelSource('xinlai/LISA-tiny', 'lisa', opts({ retries: 2 }));
    expect(await readFile(path.join(result.dir, shard))).toEqual(data);
    expect(events.some((e) => e.type === 'retry' && e.file === shard)).toBe(true);
    const resumed = hub.downloadsOf(shard).map((r) => r.range).filter(Boolean);
    expect(resumed).toHaveLength(1);
    expect(Number(/^bytes=(\d+)-$/.exec(resumed[0] ?? '')?.[1])).toBeGreaterThan(0);

    // Now a run that gives up: nothing that looks complete is left, and the next run continues.
    await rm(cache, { recursive: true, force: true });
    hub.requests.length = 0;
    hub.drops.set(shard, { after: 70_000, times: 99 });
    expect((await failure(resolveModelSource('xinlai/LISA-tiny', 'lisa', opts()))).message).toMatch(/model-00001-of-00002\.safetensors.*run again to continue/);
    const blobs = path.join(cache, 'models--xinlai--LISA-tiny', 'blobs');
    const partial = (await stat(path.join(blobs, `${sha256(data)}.incomplete`))).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(data.length);
    await expect(stat(path.join(blobs, sha256(data)))).rejects.toThrow();
    await expect(stat(path.join(result.dir, shard))).rejects.toThrow();

    hub.drops.clear();
    hub.requests.length = 0;
    const second = await resolveModelSource('xinlai/LISA-tiny', 'lisa', opts());
    expect(await readFile(path.join(second.dir, shard))).toEqual(data);
    expect(hub.downloadsOf(shard).map((r) => r.range)).toEqual([`bytes=${partial}-`]);
  });

  it('refuses bytes that do not match the listed sha256', async () => {
    hub.corrupt.set('model-00002-of-00002.safetensors', blob(150_000, 99));
    expect((await failure(resolveModelSource('xinlai/LISA-tiny', 'lisa', opts()))).message).toMatch(/do not match the sha256/);
    expect(await readdir(path.join(cache, 'models--xinlai--LISA-tiny', 'blobs'))).not.toContain(sha256(blob(150_000, 99)));
  });

  it('sends HF_TOKEN as a bearer header and reads HF_ENDPOINT', async () => {
    hub.repos.set('xinlai/private', { ...lisaRepo(), token: 'hf_secret' });
    const saved = { token: process.env.HF_TOKEN, endpoint: process.env.HF_ENDPOINT };
    process.env.HF_TOKEN = 'hf_secret';
    process.env.HF_ENDPOINT = hub.url;
    try {
      await resolveModelSource('xinlai/private', 'lisa', { cacheDir: cache, progress: false, retries: 0 });
    } finally {
      restoreEnv('HF_TOKEN', saved.token);
      restoreEnv('HF_ENDPOINT', saved.endpoint);
    }
    const hubCalls = hub.requests.filter((r) => !r.path.startsWith('/cdn/'));
    expect(hubCalls.length).toBeGreaterThan(3);
    expect(hubCalls.every((r) => r.authorization === 'Bearer hf_secret')).toBe(true);
  });
});

describe('clear errors', () => {
  it('401 without a token, 404 with one, says how to fix it and never prints the token', async () => {
    hub.repos.set('xinlai/private', { ...lisaRepo(), token: 'hf_secret' });
    expect((await failure(resolveModelSource('xinlai/private', 'lisa', opts()))).message).toMatch(
      /xinlai\/private was not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 401\).*set HF_TOKEN/,
    );
    const withWrong = await failure(resolveModelSource('xinlai/private', 'lisa', opts({ token: 'hf_wrong' })));
    expect(withWrong.message).toMatch(/not found .* with the HF_TOKEN given \(HTTP 404\)/);
    expect(withWrong.message).not.toContain('hf_wrong');
    expect((await failure(resolveModelSource('xinlai/LISA-tiny@v9', 'lisa', opts()))).message).toMatch(/has no revision "v9"/);
    expect((await failure(resolveModelSource('xinlai/LISA-tiny', 'lisa', opts({ token: 'secret' })))).message).toMatch(/start with hf_/);
  });

  it('a gated repo says to accept its licence', async () => {
    hub.repos.set('meta/gated', { ...lisaRepo(), gated: true });
    expect((await failure(resolveModelSource('meta/gated', 'lisa', opts({ token: 'hf_ok' })))).message).toMatch(
      /meta\/gated is gated .*\(HTTP 403\): accept its licence at http:\/\/127\.0\.0\.1:\d+\/meta\/gated/,
    );
  });

  it('an unreachable endpoint is named', async () => {
    const endpoint = await closedEndpoint();
    const error = await failure(resolveModelSource('xinlai/LISA-tiny', 'lisa', opts({ endpoint })));
    expect(error.message).toContain(`Cannot reach ${endpoint} to download xinlai/LISA-tiny (ECONNREFUSED)`);
  });

  it('a repo with none of the needed files, or an index naming a missing shard', async () => {
    hub.repos.set('someone/text-model', { sha: 'b'.repeat(40), files: { 'README.md': { data: Buffer.from('hi') }, 'model.onnx': { data: blob(10, 1) } } });
    expect((await failure(resolveModelSource('someone/text-model', 'lisa', opts()))).message).toMatch(
      /someone\/text-model .* has none of the files of a LISA checkpoint .*: it has no config.json, no tokenizer.model, no weights/,
    );
    const repo = lisaRepo();
    delete repo.files['model-00002-of-00002.safetensors'];
    hub.repos.set('xinlai/broken', repo);
    expect((await failure(resolveModelSource('xinlai/broken', 'lisa', opts()))).message).toMatch(
      /model\.safetensors\.index\.json names model-00002-of-00002\.safetensors, which the repo does not have/,
    );
  });
});

describe('progress on stderr', () => {
  it('writes plain lines when stderr is not a terminal', async () => {
    const lines: string[] = [];
    const stream = { isTTY: false, write: (text: string) => lines.push(text) } as unknown as NodeJS.WriteStream;
    await resolveModelSource('openai/clip-tiny', 'clip', opts({ progress: stderrHubProgress(stream) }));
    const text = lines.join('');
    expect(text).toMatch(/Downloading openai\/clip-tiny\/model\.safetensors \(30\.0 KB\)/);
    expect(text).toMatch(/model\.safetensors: done, 30\.0 KB/);
    expect(text).not.toContain('\r');
  });
});

async function closedEndpoint(): Promise<string> {
  const spare = await new FakeHub().start();
  await spare.stop();
  return spare.url;
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
