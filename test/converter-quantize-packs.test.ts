/**
 * Quantized packs made from the converter fixtures (models/reference/make_fixtures.py):
 * only the LLM's Linears change, the packs load and answer, and what int8 and
 * int4 cost against the float32 pack. The fixtures' weights are solved for
 * top-2 logit margins of about 0.1, far less than a real LLaMA's, so these
 * figures say how far the quantized decoder moves, not what a real model
 * loses (that is `lisa-bot eval` on ReasonSeg; docs/converter.md).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../src/engine/image.js';
import { decodeRle } from '../src/engine/mask.js';
import { embedTokens, generate } from '../src/engine/generate.js';
import { emptyKv } from '../src/engine/kv.js';
import { openPack, releasePack } from '../src/engine/pack.js';
import { clipPixelValues, samPixelValues } from '../src/engine/preprocess.js';
import type { RleMask } from '../src/engine/types.js';
import { cli } from './helpers/cli.js';
import { type FixtureCase, converterFixtures } from './helpers/converter-fixtures.js';
import { f32, runGraph, teacherForced } from './helpers/pack-intermediates.js';
import { pythonAvailability } from './helpers/python.js';

const py = pythonAvailability();

interface AskJson {
  text: string;
  ids: number[];
  segments: { rle: RleMask; score: number }[];
}

const TOWER: Record<string, string> = { 'lisa-7b': 'clip', 'lisa-13b': 'clip-safetensors' };
/** Pack variants per checkpoint: [key, --dtype/--decoder/--quantize flags]. */
const VARIANTS: [string, string[]][] = [
  ['f32', ['--decoder', 'plain']],
  ['int8', ['--decoder', 'plain', '--quantize', 'int8']],
  ['int4', ['--decoder', 'plain', '--quantize', 'int4']],
  ['int4-fused', ['--decoder', 'fused', '--quantize', 'int4']],
  ['int8-fused', ['--decoder', 'fused', '--quantize', 'int8']],
];

function iou(a: ArrayLike<number | boolean>, b: ArrayLike<number | boolean>): number {
  let both = 0;
  let either = 0;
  for (let p = 0; p < a.length; p++) {
    if (a[p] || b[p]) either++;
    if (a[p] && b[p]) both++;
  }
  return either === 0 ? 1 : both / either;
}

describe.skipIf(py.skip)('quantized packs from the converter fixtures', () => {
  let work: string;
  let fixtures: string;
  let cases: FixtureCase[];
  let segIds: Record<string, number>;
  const packs: Record<string, string> = {};
  const summaries: Record<string, string> = {};
  const figures: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lisa-quantize-'));
    const made = await converterFixtures(py.python);
    fixtures = made.dir;
    cases = made.index.cases;
    const checkpoints = made.index.checkpoints;
    segIds = Object.fromEntries(Object.keys(TOWER).map((name) => [name, checkpoints[name]!.tokens.seg]));
    const jobs = Object.keys(TOWER).flatMap((checkpoint) =>
      VARIANTS.map(async ([key, flags]) => {
        const out = path.join(work, `${checkpoint}-${key}`);
        const result = await cli([
          'models', 'convert', '--checkpoint', path.join(fixtures, checkpoint), '--vision-tower', path.join(fixtures, TOWER[checkpoint]!),
          '--out', out, '--dtype', 'float32', ...flags,
        ]);
        expect(result.code, result.stderr).toBe(0);
        packs[`${checkpoint}-${key}`] = out;
        summaries[`${checkpoint}-${key}`] = result.stderr;
      }),
    );
    await Promise.all(jobs);
  }, 600_000);

  afterAll(async () => {
    if (figures.length > 0) console.log(`quantized pack figures (vs the float32 pack):\n  ${figures.join('\n  ')}`);
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('only the LLM is quantized: lisa.json and the summary say how, every other graph is the float pack’s, the decoder shrinks', async () => {
    for (const checkpoint of Object.keys(TOWER)) {
      const float = packs[`${checkpoint}-f32`]!;
      const floatManifest = JSON.parse(await readFile(path.join(float, 'lisa.json'), 'utf8'));
      expect(floatManifest.decoder.quantization).toBeNull();
      const decoderBytes: number[] = [(await readFile(path.join(float, 'decoder.onnx'))).byteLength];
      for (const [key, bits] of [['int8', 8], ['int4', 4]] as const) {
        const pack = packs[`${checkpoint}-${key}`]!;
        const manifest = JSON.parse(await readFile(path.join(pack, 'lisa.json'), 'utf8'));
        expect(manifest.decoder.quantization).toEqual({ bits, blockSize: 32 });
        expect(summaries[`${checkpoint}-${key}`]).toMatch(new RegExp(`float32, plain decoder, LLM Linears int${bits} \\(block 32\\)`));
        for (const [graph, file] of Object.entries(manifest.graphs as Record<string, string>)) {
          if (graph === 'decoder') continue;
          expect((await readFile(path.join(pack, file))).equals(await readFile(path.join(float, file))), file).toBe(true);
        }
        const decoder = await readFile(path.join(pack, 'decoder.onnx'));
        expect(decoder.includes('MatMulNBits')).toBe(true);
        decoderBytes.push(decoder.byteLength);
      }
      // float32 > int8 > int4 (codes of 8 and 4 bits plus a float32 scale per 32 weights).
      expect(decoderBytes[1]).toBeLessThan(decoderBytes[0]! / 2.5);
      expect(decoderBytes[2]).toBeLessThan(decoderBytes[1]! / 1.5);
      figures.push(`${checkpoint} decoder.onnx bytes: float32 ${decoderBytes[0]}, int8 ${decoderBytes[1]}, int4 ${decoderBytes[2]}`);
    }
  });

  it('on the fixtures’ answers (teacher forcing): the greedy choices and [SEG] masks of int8 and int4, far above chance', async () => {
    for (const c of cases) {
      const image = await decodeImage(await readFile(path.join(fixtures, c.image)), { maxPixels: 4e7 });
      const masks: Record<string, Uint8Array[]> = {};
      for (const [key] of VARIANTS) {
        const pack = await openPack(packs[`${c.checkpoint}-${key}`]!, { providers: ['cpu'] });
        try {
          const S = pack.manifest.clip.size;
          const features = (await runGraph(pack.sessions.visionEncoder, { pixel_values: f32(await clipPixelValues(image, pack.manifest.clip), [1, 3, S, S]) })).image_features!;
          const Z = pack.manifest.sam.size;
          const sam = await samPixelValues(image, pack.manifest.sam);
          const embeddings = (await runGraph(pack.sessions.samImageEncoder, { pixel_values: f32(sam.data, [1, 3, Z, Z]) })).image_embeddings!;
          let agree = 0;
          let steps = 0;
          masks[key] = [];
          for (const turn of c.turns) {
            const { ids, hidden } = await teacherForced(pack, turn.prompt_ids, turn.generated_ids, features);
            steps += ids.length;
            agree += ids.filter((id, i) => id === turn.generated_ids[i]).length;
            for (const step of turn.seg_steps) {
              const H = pack.manifest.decoder.hidden;
              const seg = (await runGraph(pack.sessions.segProjection, { seg_hidden: f32(hidden[step]!, [1, H]) })).seg_embeddings!;
              const low = (await runGraph(pack.sessions.samMaskDecoder, { image_embeddings: f32(embeddings, [1, 256, 64, 64]), seg_embeddings: f32(seg, [1, seg.length]) })).low_res_masks!;
              masks[key].push(Uint8Array.from(low, (v) => (v > 0 ? 1 : 0)));
            }
          }
          const agreement = agree / steps;
          const maskIou = masks[key].map((m, i) => iou(m, masks.f32![i]!));
          figures.push(`${c.name} ${key}: teacher-forced greedy choices ${agree}/${steps}; [SEG] low-res mask IoU ${maskIou.map((v) => v.toFixed(3)).join(', ') || '(no [SEG])'}`);
          // The float32 pack is the reference (converter-parity.test.ts); a quantized one must stay
          // the same model: chance is 1 in ~900 here, a wrong code layout lands near it.
          if (key === 'f32') expect(agreement).toBe(1);
          else expect(agreement).toBeGreaterThanOrEqual(key === 'int8' ? 0.8 : 0.2);
        } finally {
          await releasePack(pack);
        }
      }
    }
  }, 300_000);

  it('a quantized fused pack decodes inside its Loop graph to the ids of the step loop (the body reads the quantized weights)', async () => {
    for (const key of ['int4-fused', 'int8-fused']) {
      const pack = await openPack(packs[`lisa-7b-${key}`]!, { providers: ['cpu'] });
      try {
        expect(pack.manifest.decoder.onDeviceLoop).toBe(true);
        const ids = Array.from({ length: 40 }, (_, i) => 3 + ((i * 7919) % (pack.manifest.decoder.vocab - 3)));
        const embeds = await embedTokens(pack, ids);
        const decode = (deviceLoop: boolean) =>
          generate({ pack, embeds, count: ids.length, kv: emptyKv(pack), maxNewTokens: 48, contextLength: 2048, segId: segIds['lisa-7b']!, eosId: 2, throwIfAborted() {}, draftLength: 0, deviceLoop });
        const [loop, steps] = [await decode(true), await decode(false)];
        expect(loop.ids.length).toBeGreaterThan(0);
        expect(loop.ids).toEqual(steps.ids);
      } finally {
        await releasePack(pack);
      }
    }
  });

  it('int8 and int4 packs (plain and fused) answer with well-formed text, ids and one mask per [SEG]', async () => {
    for (const checkpoint of Object.keys(TOWER)) {
      const c = cases.find((x) => x.checkpoint === checkpoint)!;
      const seg = segIds[checkpoint]!;
      const { height, width } = await decodeImage(await readFile(path.join(fixtures, c.image)), { maxPixels: 4e7 });
      const answers: Record<string, AskJson> = {};
      for (const [key] of VARIANTS) {
        const result = await cli(['ask', '--model', packs[`${checkpoint}-${key}`]!, '--json', '--image', path.join(fixtures, c.image), c.questions[0]!], {
          LISABOT_MODEL_PROVIDERS: '["cpu"]',
        });
        expect(result.code, result.stderr).toBe(0);
        const answer = JSON.parse(result.stdout) as AskJson;
        expect(answer.ids.length).toBeGreaterThan(0);
        expect(answer.ids.length).toBeLessThanOrEqual(512);
        expect(typeof answer.text).toBe('string');
        expect(answer.segments).toHaveLength(answer.ids.filter((id) => id === seg).length);
        for (const s of answer.segments) {
          expect(s.rle.size).toEqual([height, width]);
          expect(Number.isFinite(s.score)).toBe(true);
        }
        answers[key] = answer;
      }
      const base = answers.f32!;
      for (const [key] of VARIANTS.slice(1)) {
        const a = answers[key]!;
        let prefix = 0;
        while (prefix < a.ids.length && a.ids[prefix] === base.ids[prefix]) prefix++;
        const union = (x: AskJson) => {
          const m = new Uint8Array(height * width);
          for (const s of x.segments) decodeRle(s.rle).data.forEach((v, p) => (m[p] |= v));
          return m;
        };
        figures.push(
          `${checkpoint} free-running ${key}: ${a.ids.length === base.ids.length && prefix === a.ids.length ? 'ids identical' : `ids agree on the first ${prefix} of ${base.ids.length}`}; ` +
            `${a.segments.length} vs ${base.segments.length} masks, union IoU ${iou(union(a), union(base)).toFixed(3)}`,
        );
      }
    }
  }, 600_000);
});
