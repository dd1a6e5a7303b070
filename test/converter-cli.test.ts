/**
 * `lisa-bot models convert` as a user runs it: every bad input exits 2 with
 * one line naming the problem, a failed conversion leaves nothing that looks
 * like a pack (and an old pack untouched), and a Hub id converts through a
 * local stand-in for the Hub.
 */
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './helpers/cli.js';
import { converterFixtures } from './helpers/converter-fixtures.js';
import { FakeHub, sha256 } from './helpers/fake-hub.js';
import { pythonAvailability } from './helpers/python.js';

const py = pythonAvailability();

/** A safetensors file of float32 zeros: enough for checks that read shapes only. */
function zerosSafetensors(tensors: Record<string, number[]>): Buffer {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([size, json, Buffer.alloc(offset)]);
}

describe.skipIf(py.skip)('lisa-bot models convert', () => {
  let work: string;
  let fixtures: string;

  const convert = (args: string[], env: NodeJS.ProcessEnv = {}) => cli(['models', 'convert', ...args], env);
  const expectOneLineError = (result: { code: number; stderr: string }, pattern: RegExp) => {
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines.at(-1)).toMatch(pattern);
    expect(lines.filter((l) => l.startsWith('lisa-bot:'))).toHaveLength(1);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  };
  const copyFixture = async (name: string, as: string) => {
    const dir = path.join(work, as);
    await cp(path.join(fixtures, name), dir, { recursive: true });
    return dir;
  };
  /** No pack, and no temporary folder, beside `out`. */
  const expectNothingWritten = async (out: string) => {
    expect(existsSync(out)).toBe(false);
    expect((await readdir(path.dirname(out))).filter((n) => n.startsWith(`${path.basename(out)}.`))).toEqual([]);
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lisa-convert-'));
    fixtures = (await converterFixtures(py.python)).dir;
  }, 300_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses a folder that does not exist, and one that is not a checkpoint', async () => {
    const missing = await convert(['--checkpoint', path.join(work, 'nowhere'), '--out', path.join(work, 'out-a')]);
    expectOneLineError(missing, /nowhere/);
    const images = await convert(['--checkpoint', path.join(fixtures, 'images'), '--out', path.join(work, 'out-b')]);
    expectOneLineError(images, /not a LISA checkpoint folder: it has no config\.json/);
    await expectNothingWritten(path.join(work, 'out-b'));
  });

  it('refuses a checkpoint with a missing shard, naming it', async () => {
    const dir = await copyFixture('lisa-7b', 'missing-shard');
    await unlink(path.join(dir, 'pytorch_model-00002-of-00002.bin'));
    const out = path.join(work, 'out-missing-shard');
    const result = await convert(['--checkpoint', dir, '--vision-tower', path.join(fixtures, 'clip'), '--out', out]);
    expectOneLineError(result, /pytorch_model-00002-of-00002\.bin is missing/);
    await expectNothingWritten(out);
  });

  it('refuses a plain LLaMA: it is not LISA', async () => {
    const result = await convert(['--checkpoint', path.join(fixtures, 'bad/plain-llama'), '--vision-tower', path.join(fixtures, 'clip'), '--out', path.join(work, 'out-llama')]);
    expectOneLineError(result, /is not a LISA checkpoint/);
  });

  it('refuses a config.json whose sizes do not match the weights', async () => {
    const dir = await copyFixture('lisa-7b', 'wrong-config');
    const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8'));
    await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: config.intermediate_size + 8 }));
    const result = await convert(['--checkpoint', dir, '--vision-tower', path.join(fixtures, 'clip'), '--out', path.join(work, 'out-config')]);
    expectOneLineError(result, /intermediate_size = \d+, but the LLaMA weights give \d+/);
  });

  it('refuses a vision tower whose hidden size is not the checkpoint\'s mm_hidden_size', async () => {
    const tower = path.join(work, 'clip-wide');
    await cp(path.join(fixtures, 'clip-safetensors'), tower, { recursive: true });
    const config = JSON.parse(await readFile(path.join(tower, 'config.json'), 'utf8'));
    config.vision_config.hidden_size = 48;
    await writeFile(path.join(tower, 'config.json'), JSON.stringify(config));
    const layers = Object.fromEntries([0, 1, 2].map((i) => [`vision_model.encoder.layers.${i}.mlp.fc1.weight`, [64, 48]]));
    await writeFile(
      path.join(tower, 'model.safetensors'),
      zerosSafetensors({
        'vision_model.embeddings.patch_embedding.weight': [48, 3, 14, 14],
        'vision_model.embeddings.position_embedding.weight': [257, 48],
        ...layers,
      }),
    );
    const result = await convert(['--checkpoint', path.join(fixtures, 'lisa-7b'), '--vision-tower', tower, '--out', path.join(work, 'out-tower')]);
    expectOneLineError(result, /hidden size 48, but the LISA checkpoint's mm_hidden_size is 32/);
  });

  it('refuses a pickle that calls anything but the tensor rebuilders, without running it', async () => {
    // The fixture's pickle would run `echo fixture-pickle-executed` if it were executed.
    const result = await convert(['--checkpoint', path.join(fixtures, 'bad/evil-pickle'), '--vision-tower', path.join(fixtures, 'clip'), '--out', path.join(work, 'out-evil')]);
    expectOneLineError(result, /refusing to load: the pickle calls os\.system/);
    expect(result.stdout + result.stderr).not.toMatch(/fixture-pickle-executed/);
  });

  it('never leaves a half-written pack: a failed conversion with --force keeps the old pack', async () => {
    const out = path.join(work, 'kept');
    const made = await convert(['--checkpoint', path.join(fixtures, 'lisa-7b'), '--vision-tower', path.join(fixtures, 'clip'), '--out', out, '--dtype', 'float32']);
    expect(made.code).toBe(0);
    const manifest = await readFile(path.join(out, 'lisa.json'), 'utf8');
    const broken = await copyFixture('lisa-13b', 'truncated');
    await truncate(path.join(broken, 'model-00002-of-00002.safetensors'), 1000);
    const failed = await convert(['--checkpoint', broken, '--vision-tower', path.join(fixtures, 'clip'), '--out', out, '--force']);
    expect(failed.code).toBe(2);
    expect(await readFile(path.join(out, 'lisa.json'), 'utf8')).toBe(manifest);
    expect((await readdir(work)).filter((n) => n.startsWith('kept.'))).toEqual([]);
    // Without --force an existing pack is not replaced.
    const refused = await convert(['--checkpoint', path.join(fixtures, 'lisa-7b'), '--vision-tower', path.join(fixtures, 'clip'), '--out', out]);
    expectOneLineError(refused, /already exists and is not empty; pass --force/);
  });

  it('converts Hub ids, downloading only the needed files into the Hugging Face cache', async () => {
    const hub = await new FakeHub().start();
    try {
      const repo = async (id: string, dir: string) => {
        const files: Record<string, { data: Buffer; lfs?: boolean }> = {};
        for (const name of await readdir(dir)) {
          const data = await readFile(path.join(dir, name));
          files[name] = { data, lfs: /\.(bin|safetensors|model)$/.test(name) };
        }
        // A weights layout the converter must not fetch when safetensors are there.
        if (id === 'openai/clip-vit-large-patch14') files['pytorch_model.bin'] = { data: Buffer.alloc(4096, 7), lfs: true };
        hub.repos.set(id, { sha: sha256(Buffer.from(id)).slice(0, 40), files });
      };
      await repo('xinlai/LISA-13B-llama2-v1', path.join(fixtures, 'lisa-13b'));
      await repo('openai/clip-vit-large-patch14', path.join(fixtures, 'clip-safetensors'));
      const home = path.join(work, 'hf-home');
      await mkdir(home);
      const out = path.join(work, 'from-hub');
      const env = { HF_ENDPOINT: hub.url, HF_HOME: home, HF_TOKEN: '' };
      // The vision tower comes from the checkpoint's config.json (mm_vision_tower).
      const result = await convert(['--checkpoint', 'xinlai/LISA-13B-llama2-v1', '--out', out, '--dtype', 'float32'], env);
      expect(result.stderr).toMatch(/pack written/);
      expect(result.code).toBe(0);
      const manifest = JSON.parse(await readFile(path.join(out, 'lisa.json'), 'utf8'));
      expect(manifest.name).toBe('LISA-13B-llama2-v1');
      expect(hub.requests.some((r) => r.path.endsWith('/pytorch_model.bin'))).toBe(false);
      expect(existsSync(path.join(home, 'hub', 'models--xinlai--LISA-13B-llama2-v1'))).toBe(true);
    } finally {
      await hub.stop();
    }
  });
});
