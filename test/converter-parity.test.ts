/**
 * The converter's proof: tiny checkpoints in the published layouts
 * (models/reference/make_fixtures.py) are converted with `lisa-bot models
 * convert`, asked with `lisa-bot ask`, and compared with the independent
 * PyTorch reference (models/reference/run_reference.py): token ids, masks,
 * and each graph's intermediate tensors.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../src/engine/image.js';
import { decodeRle } from '../src/engine/mask.js';
import { type LoadedPack, openPack, releasePack } from '../src/engine/pack.js';
import { clipPixelValues, samPixelValues } from '../src/engine/preprocess.js';
import type { RleMask } from '../src/engine/types.js';
import { cli } from './helpers/cli.js';
import { type FixtureCase, converterFixtures } from './helpers/converter-fixtures.js';
import { f32, runGraph, teacherForced } from './helpers/pack-intermediates.js';
import { pythonAvailability } from './helpers/python.js';
import { type ReferenceResult, answerIds, maxAbsDiff, referenceFloats, runReference } from './helpers/reference-run.js';

const py = pythonAvailability();


interface AskJson {
  text: string;
  ids: number[];
  segments: { rle: RleMask; score: number }[];
}

/** Fraction of pixels on which the pack's masks and the reference's agree (all masks together). */
async function maskAgreement(reference: ReferenceResult, turnIndex: number, segments: AskJson['segments']): Promise<number> {
  const turn = reference.turns[turnIndex]!;
  const masks = await referenceFloats(reference, turn, 'masks');
  const [n, h, w] = masks.shape as [number, number, number];
  expect(segments).toHaveLength(n);
  let same = 0;
  segments.forEach((segment, i) => {
    const mask = decodeRle(segment.rle);
    expect([mask.height, mask.width]).toEqual([h, w]);
    for (let p = 0; p < h * w; p++) if (mask.data[p] === masks.data[i * h * w + p]) same++;
  });
  return n === 0 ? 1 : same / (n * h * w);
}

describe.skipIf(py.skip)('converted packs match the PyTorch reference', () => {
  let work: string;
  let fixtures: string;
  let cases: FixtureCase[];
  const packs: Record<string, string> = {};
  const references: Record<string, ReferenceResult> = {};
  const figures: string[] = [];

  const fixtureCase = (checkpoint: string) => cases.find((c) => c.checkpoint === checkpoint)!;
  const convert = async (checkpoint: string, tower: string, dtype: string, extra: string[] = []) => {
    const out = path.join(work, `${checkpoint}-${tower}-${dtype}-${extra.at(-1)}`);
    const result = await cli([
      'models', 'convert', '--checkpoint', path.join(fixtures, checkpoint), '--vision-tower', path.join(fixtures, tower),
      '--out', out, '--dtype', dtype, ...extra,
    ]);
    expect(result.stderr).toMatch(/pack written/);
    expect(result.code).toBe(0);
    return out;
  };
  const ask = async (pack: string, c: FixtureCase, question: string, session?: string) => {
    const args = ['ask', '--model', pack, '--json'];
    if (session) args.push('--session', session);
    if (!session || question === c.questions[0]) args.push('--image', path.join(fixtures, c.image));
    const env = { LISABOT_STORE_URL: `sqlite://${path.join(work, 'sessions.sqlite')}`, LISABOT_MODEL_PROVIDERS: '["cpu"]' };
    const result = await cli([...args, question], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as AskJson;
  };

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'lisa-parity-'));
    const made = await converterFixtures(py.python);
    fixtures = made.dir;
    cases = made.index.cases;
    // LISA-7B-v1 layout (.bin shards, bf16 + f32 storages) with the CLIP .bin; LISA-13B-llama2
    // layout (safetensors shards) with the CLIP safetensors, every graph's weights external.
    // Each also with the fused decoder (GroupQueryAttention, ArgMax in the graph).
    [packs.f32, packs.f16, packs.b13, packs.f32Fused, packs.f16Fused, packs.b13Fused] = await Promise.all([
      convert('lisa-7b', 'clip', 'float32', ['--decoder', 'plain']),
      convert('lisa-7b', 'clip', 'float16', ['--decoder', 'plain']),
      convert('lisa-13b', 'clip-safetensors', 'float32', ['--external-data', 'always', '--decoder', 'plain']),
      convert('lisa-7b', 'clip', 'float32', ['--decoder', 'fused']),
      convert('lisa-7b', 'clip', 'float16', ['--decoder', 'fused']),
      convert('lisa-13b', 'clip-safetensors', 'float32', ['--external-data', 'always', '--decoder', 'fused']),
    ]);
    for (const checkpoint of ['lisa-7b', 'lisa-13b']) {
      const c = fixtureCase(checkpoint);
      references[checkpoint] = await runReference(py.python, {
        checkpoint: path.join(fixtures, checkpoint),
        visionTower: path.join(fixtures, 'clip'),
        image: path.join(fixtures, c.image),
        questions: c.questions,
        maxNewTokens: 512,
        out: path.join(work, `reference-${checkpoint}`),
      });
    }
  }, 600_000);

  afterAll(async () => {
    if (figures.length > 0) console.log(`parity figures:\n  ${figures.join('\n  ')}`);
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const [label, checkpoint, packKey] of [
    ['LISA-7B-v1 layout, float32', 'lisa-7b', 'f32'],
    ['LISA-13B-llama2 layout (safetensors, external data), float32', 'lisa-13b', 'b13'],
    ['LISA-7B-v1 layout, float32, fused decoder', 'lisa-7b', 'f32Fused'],
    ['LISA-13B-llama2 layout (safetensors, external data), float32, fused decoder', 'lisa-13b', 'b13Fused'],
  ] as const) {
    it(`${label}: the same token ids and masks as the reference, first turn and follow-up`, async () => {
      const c = fixtureCase(checkpoint);
      const reference = references[checkpoint]!;
      const first = await ask(packs[packKey]!, c, c.questions[0]!, `${checkpoint}-${packKey}`);
      const expected = answerIds(reference.turns[0]!, reference.eos_token_id);
      expect(expected.length).toBeGreaterThanOrEqual(32);
      expect(expected).toContain(reference.seg_token_id);
      expect(first.ids).toEqual(expected);
      const agreement1 = await maskAgreement(reference, 0, first.segments);
      expect(agreement1).toBeGreaterThanOrEqual(0.995);

      const second = await ask(packs[packKey]!, c, c.questions[1]!, `${checkpoint}-${packKey}`);
      expect(second.ids).toEqual(answerIds(reference.turns[1]!, reference.eos_token_id));
      const agreement2 = await maskAgreement(reference, 1, second.segments);
      expect(agreement2).toBeGreaterThanOrEqual(0.995);
      figures.push(
        `${label}: ${first.ids.length} + ${second.ids.length} ids identical; masks agree on ${(100 * agreement1).toFixed(3)}% / ${(100 * agreement2).toFixed(3)}% of pixels`,
      );
    });
  }

  for (const [label, packKey] of [
    ['float16', 'f16'],
    ['float16, fused decoder', 'f16Fused'],
  ] as const) {
    it(`LISA-7B-v1 layout, ${label}: the same token ids, masks agree on >= 99% of pixels`, async () => {
      const c = fixtureCase('lisa-7b');
      const reference = references['lisa-7b']!;
      const first = await ask(packs[packKey]!, c, c.questions[0]!);
      expect(first.ids).toEqual(answerIds(reference.turns[0]!, reference.eos_token_id));
      const agreement = await maskAgreement(reference, 0, first.segments);
      expect(agreement).toBeGreaterThanOrEqual(0.99);
      figures.push(`${label}: ${first.ids.length} ids identical; masks agree on ${(100 * agreement).toFixed(3)}%`);
    });
  }

  it("fused decoder (float32), teacher-forced: every step's greedy id and the [SEG] hidden states as the reference", async () => {
    const pack = await openPack(packs.f32Fused!, { providers: ['cpu'] });
    try {
      const reference = references['lisa-7b']!;
      for (const turn of reference.turns) {
        const features = (await referenceFloats(reference, turn, 'image_features')).data;
        const { hidden, ids } = await teacherForced(pack, turn.prompt_ids, turn.generated_ids, features);
        expect(ids).toEqual(turn.generated_ids);
        const segHidden = await referenceFloats(reference, turn, 'seg_hidden');
        const H = pack.manifest.decoder.hidden;
        const ours = new Float32Array(turn.seg_steps.length * H);
        turn.seg_steps.forEach((step, i) => ours.set(hidden[step]!, i * H));
        const { diff, scale } = maxAbsDiff(ours, segHidden.data);
        figures.push(`fused [SEG] hidden states: max |diff| ${diff.toExponential(2)} (reference scale ${scale.toFixed(3)})`);
        expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(scale, 1e-6));
      }
    } finally {
      await releasePack(pack);
    }
  });

  describe('each graph of the float32 pack against the reference tensors', () => {
    let pack: LoadedPack;
    let reference: ReferenceResult;
    const compare = (name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, relative: number) => {
      const { diff, scale } = maxAbsDiff(actual, expected);
      figures.push(`${name}: max |diff| ${diff.toExponential(2)} (reference scale ${scale.toFixed(3)})`);
      expect(diff, name).toBeLessThanOrEqual(relative * Math.max(scale, 1e-6));
    };

    beforeAll(async () => {
      pack = await openPack(packs.f32!, { providers: ['cpu'] });
      reference = references['lisa-7b']!;
    });
    afterAll(async () => {
      if (pack) await releasePack(pack);
    });

    it('preprocessing: CLIP and SAM pixel values', async () => {
      const turn = reference.turns[0]!;
      const image = await decodeImage(await readFile(path.join(fixtures, fixtureCase('lisa-7b').image)), { maxPixels: 4e7 });
      compare('CLIP pixel values', await clipPixelValues(image, pack.manifest.clip), (await referenceFloats(reference, turn, 'clip_pixel_values')).data, 1e-5);
      compare('SAM pixel values', (await samPixelValues(image, pack.manifest.sam)).data, (await referenceFloats(reference, turn, 'sam_pixel_values')).data, 1e-5);
    });

    it('vision encoder (CLIP + mm_projector) and SAM image encoder', async () => {
      const turn = reference.turns[0]!;
      const clip = await referenceFloats(reference, turn, 'clip_pixel_values');
      const features = await runGraph(pack.sessions.visionEncoder, { pixel_values: f32(clip.data, clip.shape) });
      compare('image features after the projector', features.image_features!, (await referenceFloats(reference, turn, 'image_features')).data, 1e-4);
      const sam = await referenceFloats(reference, turn, 'sam_pixel_values');
      const embeddings = await runGraph(pack.sessions.samImageEncoder, { pixel_values: f32(sam.data, sam.shape) });
      compare('SAM image embeddings', embeddings.image_embeddings!, (await referenceFloats(reference, turn, 'sam_image_embeddings')).data, 1e-4);
    });

    it('decoder: per-step logits and the [SEG] hidden states; seg projection; mask decoder', async () => {
      for (const turn of reference.turns) {
        const features = (await referenceFloats(reference, turn, 'image_features')).data;
        const { stepLogits, hidden } = await teacherForced(pack, turn.prompt_ids, turn.generated_ids, features);
        const logits = await referenceFloats(reference, turn, 'step_logits');
        const flat = new Float32Array(stepLogits.length * pack.manifest.decoder.vocab);
        stepLogits.forEach((row, i) => flat.set(row, i * pack.manifest.decoder.vocab));
        compare('per-step logits', flat, logits.data, 1e-4);

        const segHidden = await referenceFloats(reference, turn, 'seg_hidden');
        const H = pack.manifest.decoder.hidden;
        const ours = new Float32Array(turn.seg_steps.length * H);
        turn.seg_steps.forEach((step, i) => ours.set(hidden[step]!, i * H));
        compare('[SEG] hidden states', ours, segHidden.data, 1e-4);

        const projected = await runGraph(pack.sessions.segProjection, { seg_hidden: f32(segHidden.data, segHidden.shape) });
        const segEmbeddings = await referenceFloats(reference, turn, 'seg_embeddings');
        compare('[SEG] embeddings', projected.seg_embeddings!, segEmbeddings.data, 1e-4);

        const image = await referenceFloats(reference, turn, 'sam_image_embeddings');
        const decoded = await runGraph(pack.sessions.samMaskDecoder, {
          image_embeddings: f32(image.data, image.shape),
          seg_embeddings: f32(segEmbeddings.data, segEmbeddings.shape),
        });
        compare('low-res masks', decoded.low_res_masks!, (await referenceFloats(reference, turn, 'low_res_masks')).data, 1e-4);
        compare('IoU predictions', decoded.iou_predictions!, (await referenceFloats(reference, turn, 'iou_predictions')).data, 1e-4);
      }
    });
  });
});
