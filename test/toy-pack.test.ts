/**
 * The toy pack generator, checked by driving its graphs directly with
 * onnxruntime-node (no engine): manifest, determinism, tokenizer, the decoder's
 * fixed answer and colour memory across turns, and the SAM stand-ins' masks.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packManifestSchema, type PackManifest } from '../src/engine/manifest.js';
import { floatToHalf } from '../src/engine/floats.js';
import { writeToyPack } from '../models/generator/toy.js';
import { TOY_COLOUR_NAMES, TOY_PALETTE, toyColourIndex } from '../models/generator/toy-palette.js';
import { SAM_NORMALISATION } from '../models/generator/pack-files.js';

const SYSTEM =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
const DTYPES = ['float32', 'float16'] as const;
const RED = TOY_COLOUR_NAMES.indexOf('red');
const BLUE = TOY_COLOUR_NAMES.indexOf('blue');
const GREEN = TOY_COLOUR_NAMES.indexOf('green');

const dirs: Record<string, string> = {};
const tempDirs: string[] = [];

async function freshPack(dtype: (typeof DTYPES)[number]): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `lisa-toy-${dtype}-`));
  tempDirs.push(dir);
  await writeToyPack(dir, { dtype });
  return dir;
}

beforeAll(async () => {
  for (const dtype of DTYPES) dirs[dtype] = await freshPack(dtype);
});
afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});

async function loadManifest(dir: string): Promise<PackManifest> {
  return packManifestSchema.parse(JSON.parse(await readFile(path.join(dir, 'lisa.json'), 'utf8')));
}

async function loadTokenizer(dir: string, withAddedTokens = true): Promise<Tokenizer> {
  const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
  // The pack has no tokenizer_config.json: an empty config is all the library needs.
  return new Tokenizer(withAddedTokens ? json : { ...json, added_tokens: [] }, {});
}

function session(dir: string, file: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(path.join(dir, file), { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

function halfToFloat(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  const magnitude = exponent === 0 ? mantissa * 2 ** -24 : exponent === 31 ? (mantissa ? NaN : Infinity) : (1 + mantissa / 1024) * 2 ** (exponent - 15);
  return bits & 0x8000 ? -magnitude : magnitude;
}

/** A float tensor's values as numbers, whatever its dtype. */
function values(tensor: ort.Tensor): number[] {
  if (tensor.type === 'float16' && tensor.data instanceof Uint16Array) return Array.from(tensor.data, halfToFloat);
  return Array.from(tensor.data as Float32Array);
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/** A float tensor of the pack dtype (float16 as raw bits: Node 20 has no Float16Array). */
function floatTensor(dtype: 'float32' | 'float16', data: readonly number[], dims: number[]): ort.Tensor {
  return dtype === 'float16' ? new ort.Tensor('float16', Uint16Array.from(data, floatToHalf), dims) : new ort.Tensor('float32', Float32Array.from(data), dims);
}

const int64 = (ids: number[]) => new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);

/** Concatenates [1,T,H] tensors of one dtype along T (float16 round-trips exactly). */
function concatRows(dtype: 'float32' | 'float16', parts: ort.Tensor[], hidden: number): ort.Tensor {
  const rows = parts.reduce((n, p) => n + p.dims[1]!, 0);
  return floatTensor(dtype, parts.flatMap(values), [1, rows, hidden]);
}

describe.each(DTYPES)('toy pack (%s)', (dtype) => {
  it('has a manifest that passes the schema and matches the tokenizer', async () => {
    const dir = dirs[dtype]!;
    const manifest = await loadManifest(dir);
    const tokenizer = await loadTokenizer(dir);
    const V = tokenizer.get_vocab().size;
    expect(manifest).toMatchObject({ name: 'toy', demo: true, dtype, template: 'llava_v1', system: SYSTEM, imageTokens: 256 });
    expect(manifest.tokens).toEqual({ seg: '[SEG]', imageStart: '<im_start>', imageEnd: '<im_end>', image: '<image>', eos: '</s>' });
    expect(manifest.decoder).toMatchObject({ layers: 1, kvHeads: 1, headDim: 8, hidden: V + 8, vocab: V, contextLength: 1024 });
    expect(manifest.clip).toMatchObject({ size: 224, resample: 'bicubic' });
    expect(manifest.sam).toEqual({ size: 1024, ...SAM_NORMALISATION });
    const files = (await readdir(dir)).sort();
    expect(files).toEqual([...Object.values(manifest.graphs), 'lisa.json', 'tokenizer.json'].sort());
  });

  it('is byte-identical when generated again', async () => {
    const again = await freshPack(dtype);
    for (const file of await readdir(dirs[dtype]!)) {
      expect(Buffer.compare(await readFile(path.join(again, file)), await readFile(path.join(dirs[dtype]!, file))), file).toBe(0);
    }
  });

  it('declares the contract inputs and outputs', async () => {
    const dir = dirs[dtype]!;
    const decoder = await session(dir, 'decoder.onnx');
    const meta = (list: readonly ort.InferenceSession.ValueMetadata[]) =>
      list.map((m) => [m.name, m.isTensor ? m.type : '?', m.isTensor ? m.shape.map((d) => (typeof d === 'number' ? d : '*')) : []]);
    const { hidden: H, vocab: V } = (await loadManifest(dir)).decoder;
    expect(meta(decoder.inputMetadata)).toEqual([
      ['inputs_embeds', dtype, [1, '*', H]],
      ['attention_mask', 'int64', [1, '*']],
      ['position_ids', 'int64', [1, '*']],
      ['past_key_values.0.key', dtype, [1, 1, '*', 8]],
      ['past_key_values.0.value', dtype, [1, 1, '*', 8]],
    ]);
    expect(meta(decoder.outputMetadata)).toEqual([
      ['logits', dtype, [1, '*', V]],
      ['last_hidden_state', dtype, [1, '*', H]],
      ['present.0.key', dtype, [1, 1, '*', 8]],
      ['present.0.value', dtype, [1, 1, '*', 8]],
    ]);
    const seg = await session(dir, 'seg_projection.onnx');
    expect(meta(seg.outputMetadata)).toEqual([['seg_embeddings', 'float32', ['*', 256]]]);
  });

  it('answers "Sure, it is [SEG]." and remembers the colour named last, across turns', async () => {
    const dir = dirs[dtype]!;
    const { hidden: H, vocab: V } = (await loadManifest(dir)).decoder;
    const tokenizer = await loadTokenizer(dir);
    const [embed, vision, decoder, segProjection] = await Promise.all(
      ['embed_tokens.onnx', 'vision_encoder.onnx', 'decoder.onnx', 'seg_projection.onnx'].map((f) => session(dir, f)),
    );
    const embedIds = async (ids: number[]) => (await embed.run({ input_ids: int64(ids) })).inputs_embeds as ort.Tensor;
    const emptyPast = floatTensor(dtype, [], [1, 1, 0, 8]);
    let past = { key: emptyPast, value: emptyPast };
    let cached = 0;
    // Feeds embeddings; returns the logits and hidden state of the last position.
    const feed = async (embeds: ort.Tensor) => {
      const T = embeds.dims[1]!;
      const out = await decoder.run({
        inputs_embeds: embeds,
        attention_mask: int64(Array(cached + T).fill(1)),
        position_ids: int64(Array.from({ length: T }, (_, i) => cached + i)),
        'past_key_values.0.key': past.key,
        'past_key_values.0.value': past.value,
      });
      cached += T;
      past = { key: out['present.0.key'] as ort.Tensor, value: out['present.0.value'] as ort.Tensor };
      expect(past.key.dims).toEqual([1, 1, cached, 8]);
      return { logits: values(out.logits as ort.Tensor).slice(-V), hidden: values(out.last_hidden_state as ort.Tensor).slice(-H) };
    };
    const eos = tokenizer.token_to_id('</s>')!;
    const seg = tokenizer.token_to_id('[SEG]')!;
    // Greedy decoding, keeping the hidden state that produced [SEG] (the offset rule).
    const answer = async (embeds: ort.Tensor) => {
      let step = await feed(embeds);
      const ids: number[] = [];
      let segHidden: number[] | undefined;
      while (ids.length < 512) {
        const id = argmax(step.logits);
        ids.push(id);
        if (id === eos) break;
        if (id === seg) segHidden = step.hidden;
        step = await feed(await embedIds([id]));
      }
      const projected = (await segProjection.run({ seg_hidden: floatTensor(dtype, segHidden!, [1, H]) })).seg_embeddings as ort.Tensor;
      expect(projected.type).toBe('float32');
      return { ids, colours: segHidden!.slice(V, V + 6), prompt: Array.from(projected.data as Float32Array) };
    };
    // The answer is lowercase like all input (the decoder capitalises it), so a follow-up re-tokenises it to these very ids.
    const answerIds = ['sure', ',', 'it', 'is', '[SEG]', '.', '</s>'].map((t) => tokenizer.token_to_id(t)!);

    // Turn 1, with the image spliced between the chunks as the reference does.
    const [before, after] = `${SYSTEM} USER: <im_start><image><im_end>\nsegment the red square ASSISTANT:`.split('<image>');
    const beforeIds = tokenizer.encode(before!).ids;
    const afterIds = tokenizer.encode(after!).ids.slice(1);
    expect(beforeIds[0]).toBe(tokenizer.token_to_id('<s>'));
    expect([...beforeIds, ...afterIds]).not.toContain(tokenizer.token_to_id('<unk>'));
    const pixels = new ort.Tensor('float32', Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => ((i % 97) / 97) * 2 - 1), [1, 3, 224, 224]);
    const image = (await vision.run({ pixel_values: pixels })).image_features as ort.Tensor;
    expect(image.dims).toEqual([1, 256, H]);
    const imageValues = values(image);
    for (let r = 0; r < 256; r++) expect(imageValues.slice(r * H, r * H + V + 6).every((v) => v === 0)).toBe(true);
    const first = await answer(concatRows(dtype, [await embedIds(beforeIds), image, await embedIds(afterIds)], H));
    expect(first.ids).toEqual(answerIds);
    expect(tokenizer.decode(first.ids.slice(0, -1), { skip_special_tokens: true })).toBe('Sure, it is [SEG].');
    expect(argmax(first.colours)).toBe(RED);
    expect(argmax(first.prompt)).toBe(RED);
    expect(first.prompt.slice(6).every((v) => v === 0)).toBe(true);

    // Later turns continue from the cache: llava_v1 puts `</s>` after each answer.
    const turn = async (question: string) => answer(await embedIds(tokenizer.encode(`</s>USER: ${question} ASSISTANT:`, { add_special_tokens: false }).ids));
    const second = await turn('now the blue one');
    expect(second.ids).toEqual(answerIds);
    expect(argmax(second.colours)).toBe(BLUE);
    const third = await turn('where is it?');
    expect(third.ids).toEqual(answerIds);
    expect(argmax(third.colours)).toBe(BLUE);
    const fourth = await turn('The RED circle, next to the Green one');
    expect(argmax(fourth.prompt)).toBe(GREEN);
  });

  it('prefills a full 1024-token context causally and honours the attention mask', async () => {
    const dir = dirs[dtype]!;
    const { hidden: H, vocab: V } = (await loadManifest(dir)).decoder;
    const tokenizer = await loadTokenizer(dir);
    const [embed, decoder] = await Promise.all(['embed_tokens.onnx', 'decoder.onnx'].map((f) => session(dir, f)));
    const ids = Array<number>(1024).fill(tokenizer.token_to_id('the')!);
    ids[10] = tokenizer.token_to_id('red')!;
    ids[900] = tokenizer.token_to_id('green')!;
    const embeds = (await embed.run({ input_ids: int64(ids) })).inputs_embeds as ort.Tensor;
    const empty = floatTensor(dtype, [], [1, 1, 0, 8]);
    const run = async (mask: number[]) => {
      const out = await decoder.run({
        inputs_embeds: embeds,
        attention_mask: int64(mask),
        position_ids: int64(ids.map((_, i) => i)),
        'past_key_values.0.key': empty,
        'past_key_values.0.value': empty,
      });
      const hidden = values(out.last_hidden_state as ort.Tensor);
      return (t: number) => hidden.slice(t * H + V, t * H + V + 6);
    };
    const colourAt = await run(Array(1024).fill(1));
    expect(colourAt(5).every((v) => v === 0)).toBe(true);
    expect(colourAt(10)[RED]).toBe(11);
    expect(argmax(colourAt(899))).toBe(RED);
    expect(argmax(colourAt(1023))).toBe(GREEN);
    expect(colourAt(1023)[GREEN]).toBe(901);
    const masked = Array(1024).fill(1);
    masked[900] = 0;
    expect(argmax((await run(masked))(1023))).toBe(RED);
  });
});

describe('toy tokenizer', () => {
  it('lowercases, splits punctuation, adds BOS and keeps [SEG] a non-special added token', async () => {
    const dir = dirs.float32!;
    const tokenizer = await loadTokenizer(dir);
    const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
    const V = tokenizer.get_vocab().size;
    const id = (t: string) => tokenizer.token_to_id(t);
    expect([id('<unk>'), id('<s>'), id('</s>')]).toEqual([0, 1, 2]);
    expect([id('[SEG]'), id('<im_start>'), id('<im_end>')]).toEqual([V - 3, V - 2, V - 1]);
    const added = Object.fromEntries(json.added_tokens.map((t: { content: string; special: boolean }) => [t.content, t.special]));
    expect(added).toEqual({ '<unk>': true, '<s>': true, '</s>': true, '[SEG]': false, '<im_start>': false, '<im_end>': false });

    const encoded = tokenizer.encode('Where is the RED square?');
    expect(encoded.tokens).toEqual(['<s>', 'where', 'is', 'the', 'red', 'square', '?']);
    expect(tokenizer.encode('a zebra', { add_special_tokens: false }).ids).toEqual([id('a'), id('<unk>')]);
    // The full tokenizer matches the added tokens in raw text, as LISA's does...
    expect(tokenizer.encode('<im_start><im_end>', { add_special_tokens: false }).ids).toEqual([id('<im_start>'), id('<im_end>')]);
    // ...and without them (what the engine uses for user text) typed markers stay plain text.
    const plain = await loadTokenizer(dir, false);
    expect(plain.tokenize('[SEG] </s>')).toEqual(['[', 'seg', ']', '<', '/', 's', '>']);

    const answer = ['sure', ',', 'it', 'is', '[SEG]', '.'].map((t) => id(t)!);
    expect(tokenizer.decode(answer, { skip_special_tokens: true })).toBe('Sure, it is [SEG].');
    expect(tokenizer.decode([...answer, id('</s>')!], { skip_special_tokens: true })).toBe('Sure, it is [SEG].');
  });
});

describe('toy palette', () => {
  it('puts each palette colour in itself and neutral colours (and the SAM padding) in none', () => {
    TOY_PALETTE.forEach((c, i) => expect(toyColourIndex(...c.rgb)).toBe(i));
    for (const grey of [0, 128, 200, 255]) expect(toyColourIndex(grey, grey, grey)).toBe(-1);
    // Zero padding after normalising un-normalises to the SAM mean colour.
    expect(toyColourIndex(...SAM_NORMALISATION.mean)).toBe(-1);
  });
});

describe('toy SAM stand-ins', () => {
  // A 1024x768 frame (no resize needed), padded at the bottom like the engine does.
  const W = 1024;
  const H = 768;
  const inRect = (x: number, y: number) => x >= 101 && x < 402 && y >= 150 && y < 351;
  const inCircle = (x: number, y: number) => (x - 700) ** 2 + (y - 500) ** 2 <= 150 ** 2;
  const colourOf = (x: number, y: number): readonly number[] => (inRect(x, y) ? [225, 40, 35] : inCircle(x, y) ? TOY_PALETTE[BLUE]!.rgb : [200, 200, 200]);

  it('SAM graphs do not depend on the pack dtype', async () => {
    for (const file of ['sam_image_encoder.onnx', 'sam_mask_decoder.onnx']) {
      expect(Buffer.compare(await readFile(path.join(dirs.float32!, file)), await readFile(path.join(dirs.float16!, file)))).toBe(0);
    }
  });

  it('masks the prompt colour on the 256 grid, and nothing for an empty prompt', async () => {
    const S = 1024;
    const pixels = new Float32Array(3 * S * S); // zero = padding
    const fraction = [RED, BLUE].map(() => new Float64Array(256 * 256));
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const rgb = colourOf(x, y);
        for (let c = 0; c < 3; c++) pixels[c * S * S + y * S + x] = (rgb[c]! - SAM_NORMALISATION.mean[c]!) / SAM_NORMALISATION.std[c]!;
        const member = toyColourIndex(rgb[0]!, rgb[1]!, rgb[2]!);
        [RED, BLUE].forEach((colour, k) => {
          if (member === colour) fraction[k]![(y >> 2) * 256 + (x >> 2)]! += 1 / 16;
        });
      }
    }
    const encoder = await session(dirs.float32!, 'sam_image_encoder.onnx');
    const decoder = await session(dirs.float32!, 'sam_mask_decoder.onnx');
    const { image_embeddings } = await encoder.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) });
    expect(image_embeddings!.dims).toEqual([1, 256, 64, 64]);
    // Prompts like seg_projection's: red dominant (some blue too), blue dominant, none.
    const prompts = new Float32Array(3 * 256);
    prompts[RED] = 12;
    prompts[BLUE] = 5;
    prompts[256 + BLUE] = 40;
    prompts[256 + RED] = 12;
    const out = await decoder.run({ image_embeddings: image_embeddings!, seg_embeddings: new ort.Tensor('float32', prompts, [3, 256]) });
    const masks = out.low_res_masks as ort.Tensor;
    expect(masks.dims).toEqual([3, 1, 256, 256]);
    expect(Array.from(out.iou_predictions!.data as Float32Array)).toEqual([1, 1, 0]);
    const logits = masks.data as Float32Array;
    [RED, BLUE].forEach((_, k) => {
      let inter = 0;
      let union = 0;
      let worst = 0;
      for (let i = 0; i < 256 * 256; i++) {
        const logit = logits[k * 65536 + i]!;
        const truth = fraction[k]![i]! > 0.5;
        worst = Math.max(worst, Math.abs(logit - 20 * (fraction[k]![i]! - 0.5)));
        if (logit > 0 && truth) inter++;
        if (logit > 0 || truth) union++;
      }
      expect(worst).toBeLessThan(1e-4);
      expect(inter / union).toBeGreaterThanOrEqual(0.95);
      expect(union).toBeGreaterThan(1000);
    });
    expect(logits.subarray(2 * 65536).every((v) => v < 0)).toBe(true);
  });
});

describe('floatToHalf (src/engine/floats.ts)', () => {
  it('round-trips every half and rounds to nearest even', () => {
    const wrong: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN payloads
      if (floatToHalf(halfToFloat(h)) !== h) wrong.push(h);
    }
    expect(wrong).toEqual([]);
    const cases: [number, number][] = [
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], // tie -> even
      [1 + 3 * 2 ** -11, 0x3c02], // tie -> even
      [65520, 0x7c00], // rounds up to Infinity
      [2 ** -25, 0x0000], // subnormal tie -> even (zero)
      [3 * 2 ** -26, 0x0001],
      [1e-9, 0x0000],
    ];
    for (const [value, bits] of cases) expect(floatToHalf(value), String(value)).toBe(bits);
    expect(floatToHalf(NaN) & 0x7e00).toBe(0x7e00);
  });
});
