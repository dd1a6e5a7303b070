import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../src/engine/engine.js';
import { embedTokens, generate } from '../src/engine/generate.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';
import { emptyKv, kvBytes, kvOnDevice, truncateKvState } from '../src/engine/kv.js';
import { type LoadedPack, openPack, releasePack } from '../src/engine/pack.js';
import type { ChatTurn } from '../src/engine/types.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cli } from './helpers/cli.js';
import { converterFixtures } from './helpers/converter-fixtures.js';
import { pythonAvailability } from './helpers/python.js';
import { drawShapes, encodeImage, makeToyPack } from './helpers/toy.js';
import { webgpuAvailability } from './helpers/webgpu.js';

const run = promisify(execFile);
const files = new ImagesInMemory();
const webgpu = await webgpuAvailability();

let toy: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  toy = await makeToyPack();
});
afterAll(() => toy.cleanup());

describe('webgpu provider without an adapter', () => {
  it('falls back to cpu with one warning naming the reason', async () => {
    // No Vulkan driver at all: what a machine without a GPU (or its driver) looks like to Dawn.
    const script = [
      "import { openPack } from './src/engine/pack.ts';",
      "import pino from 'pino';",
      `const pack = await openPack(${JSON.stringify(toy.dir)}, { providers: ['webgpu'], logger: pino({ level: 'info' }, process.stdout) });`,
      "console.log(JSON.stringify({ provider: pack.provider }));",
    ].join('\n');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/no-driver.json', VK_DRIVER_FILES: '/nonexistent/no-driver.json' },
    });
    const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { provider?: string; msg?: string; level?: number });
    expect(lines.at(-1)).toEqual({ provider: 'cpu' });
    const warnings = lines.filter((l) => l.level === 40 && /webgpu/.test(l.msg ?? ''));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(/^execution provider webgpu unavailable.*(adapter|Vulkan).*trying the next one$/);
  });
});

describe.skipIf(webgpu.skip)('webgpu provider', () => {
  let cpu: LoadedPack;
  let gpu: LoadedPack;
  beforeAll(async () => {
    cpu = await openPack(toy.dir, { providers: ['cpu'] });
    gpu = await openPack(toy.dir, { providers: ['webgpu'] });
  });
  afterAll(async () => {
    await releasePack(cpu);
    await releasePack(gpu);
  });

  async function answer(pack: LoadedPack, ids: number[], kv = emptyKv(pack), draftLength = 0, context: number[] = ids) {
    return generate({
      pack,
      embeds: await embedTokens(pack, ids),
      count: ids.length,
      kv,
      maxNewTokens: 24,
      contextLength: pack.manifest.decoder.contextLength,
      segId: -1,
      eosId: -1,
      throwIfAborted: () => undefined,
      draftLength,
      context,
    });
  }

  it('keeps the KV cache on the device and picks the same tokens as cpu, drafts and a cut prefix included', async () => {
    expect(gpu.provider).toBe('webgpu');
    const prompt = [1, 5, 6, 7, 8, 9, 10, 11, 12];
    const [a, b] = [await answer(cpu, prompt), await answer(gpu, prompt)];
    expect(b.ids).toEqual(a.ids);
    expect(kvOnDevice(b.kv)).toBe(true);
    expect(kvOnDevice(a.kv)).toBe(false);
    expect(kvBytes(b.kv)).toBe(kvBytes(a.kv));
    // A follow-up after the shared prefix, drafting from the whole conversation: rejected drafts cut the cache on the device.
    const cut = prompt.length + 3;
    const [ca, cb] = [await truncateKvState(cpu, a.kv, cut), await truncateKvState(gpu, b.kv, cut)];
    expect(kvOnDevice(cb)).toBe(true);
    expect(cb.length).toBe(cut);
    const more = [3, 4];
    const context = [...prompt, ...a.ids.slice(0, 3), ...more, ...a.ids];
    const [fa, fb] = [await answer(cpu, more, ca, 4, context), await answer(gpu, more, cb, 4, context)];
    expect(fb.ids).toEqual(fa.ids);
    expect(fb.drafts).toEqual(fa.drafts);
    expect(fb.drafts.proposed).toBeGreaterThan(fb.drafts.accepted);
    expect(fb.kv.length).toBe(fa.kv.length);
  });

  it('answers a toy turn and its follow-up as cpu does: text, ids and masks', async () => {
    const engines = [await Engine.open(toy.dir, { images: files, providers: ['cpu'] }), await Engine.open(toy.dir, { images: files, providers: ['webgpu'], draftLength: 8 })];
    try {
      expect(engines.map((e) => e.provider)).toEqual(['cpu', 'webgpu']);
      const file = await encodeImage(drawShapes(320, 240, [{ colour: 'red', kind: 'rect', x: 40, y: 40, w: 120, h: 90 }, { colour: 'blue', kind: 'circle', x: 180, y: 100, w: 100, h: 100 }]), 'png');
      const turns: ChatTurn[] = [{ user: 'segment the red one' }];
      for (const next of ['now the blue one', 'and where is it now?']) {
        const [plain, device] = [await engines[0]!.chat({ imageHash: files.add(file), turns }), await engines[1]!.chat({ imageHash: files.add(file), turns })];
        expect(device.text).toBe(plain.text);
        expect(device.ids).toEqual(plain.ids);
        expect(device.segments.map((s) => [s.rle.counts, s.bbox])).toEqual(plain.segments.map((s) => [s.rle.counts, s.bbox]));
        turns[turns.length - 1]!.assistant = plain.text;
        turns.push({ user: next });
      }
    } finally {
      for (const engine of engines) await engine.close();
    }
  });
});

describe.skipIf(webgpu.skip)('webgpu provider on the converter parity fixture', () => {
  const py = pythonAvailability();
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lisa-webgpu-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it.skipIf(py.skip)('gives the reference answer with a plain decoder, and leaves webgpu for cpu with a fused one', async () => {
    const made = await converterFixtures(py.python);
    const c = made.index.cases.find((k) => k.checkpoint === 'lisa-7b')!;
    const expected = c.turns[0]!.generated_ids.slice(0, -1); // the stopping EOS is not an answer id
    for (const form of ['plain', 'fused']) {
      const out = path.join(work, form);
      const converted = await cli(['models', 'convert', '--checkpoint', path.join(made.dir, 'lisa-7b'), '--vision-tower', path.join(made.dir, 'clip'),
        '--out', out, '--dtype', 'float32', '--decoder', form]);
      expect(converted.code).toBe(0);
      const asked = await cli(['ask', '--model', out, '--image', path.join(made.dir, c.image), '--json', '--provider', 'webgpu', c.questions[0]!]);
      expect(asked.code).toBe(0);
      expect((JSON.parse(asked.stdout) as { ids: number[] }).ids).toEqual(expected);
      if (form === 'fused') expect(asked.stderr).toMatch(/--provider webgpu is not available here; ran on cpu/);
      else expect(asked.stderr).not.toMatch(/ran on cpu/);
    }
  }, 300_000);
});
