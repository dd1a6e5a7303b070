import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../src/engine/onnx-builder.js';
import { Engine } from '../src/engine/engine.js';
import { embedTokens, generate } from '../src/engine/generate.js';
import { emptyKv } from '../src/engine/kv.js';
import { type LoadedPack, openPack, releasePack } from '../src/engine/pack.js';
import { halfToFloat } from '../src/engine/floats.js';
import { drawShapes, encodeImage, makeToyPack } from './helpers/toy.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

/**
 * A decoder that follows a script: at absolute position p the logits pick
 * `script[p]`, and the last hidden state is p + 1 in every dimension — so a
 * test can tell exactly which step's hidden state became a [SEG] embedding.
 */
function scriptedDecoder(script: number[], vocab: number, hidden: number, headDim: number): Uint8Array {
  const g = new GraphBuilder('scripted_decoder');
  const embeds = g.input('inputs_embeds', 'float32', [1, 'T', hidden]);
  g.input('attention_mask', 'int64', [1, 'PT']);
  const positions = g.input('position_ids', 'int64', [1, 'T']);
  const pastKey = g.input('past_key_values.0.key', 'float32', [1, 1, 'P', headDim]);
  const pastValue = g.input('past_key_values.0.value', 'float32', [1, 1, 'P', headDim]);
  const next = g.op('Gather', [g.int64(script), positions], { axis: 0 });
  const logits = g.op('OneHot', [next, g.int64([vocab], []), g.float32([0, 1])], { axis: -1 });
  const position = g.op('Add', [g.cast(positions, 'int64', 'float32'), g.float32([1], [])]);
  const state = g.op('Mul', [g.unsqueeze(position, [2]), g.float32(new Array(hidden).fill(1), [1, 1, hidden])]);
  const rows = g.unsqueeze(g.slice(embeds, 2, 0, headDim), [1]);
  g.output('logits', logits, 'float32', [1, 'T', vocab]);
  g.output('last_hidden_state', state, 'float32', [1, 'T', hidden]);
  g.output('present.0.key', g.op('Concat', [pastKey, rows], { axis: 2 }), 'float32', [1, 1, 'PT', headDim]);
  g.output('present.0.value', g.op('Concat', [pastValue, rows], { axis: 2 }), 'float32', [1, 1, 'PT', headDim]);
  return g.toBytes();
}

let toy: { dir: string; cleanup: () => Promise<void> };
let vocabIds: Record<string, number>;
let manifest: { decoder: { vocab: number; hidden: number; headDim: number; contextLength: number } };

/** A copy of the toy pack whose decoder answers `tokens` after a prompt of `promptLength` positions. */
async function scriptedPack(name: string, promptLength: number, tokens: string[]): Promise<string> {
  const dir = path.join(path.dirname(toy.dir), name);
  await import('node:fs/promises').then((fs) => fs.cp(toy.dir, dir, { recursive: true }));
  const { vocab, hidden, headDim, contextLength } = manifest.decoder;
  const script = new Array<number>(contextLength).fill(vocabIds['</s>']!);
  tokens.forEach((t, i) => (script[promptLength - 1 + i] = vocabIds[t]!));
  await writeFile(path.join(dir, 'decoder.onnx'), scriptedDecoder(script, vocab, hidden, headDim));
  return dir;
}

beforeAll(async () => {
  toy = await makeToyPack();
  manifest = JSON.parse(await readFile(path.join(toy.dir, 'lisa.json'), 'utf8'));
  const json = JSON.parse(await readFile(path.join(toy.dir, 'tokenizer.json'), 'utf8'));
  vocabIds = { ...json.model.vocab };
  for (const t of json.added_tokens) vocabIds[t.content] = t.id;
});
afterAll(() => toy.cleanup());

describe('greedy generation', () => {
  let pack: LoadedPack;
  const prompt = ['<s>', 'where', 'is', 'it', '?'];
  beforeAll(async () => {
    pack = await openPack(await scriptedPack('two-segs', prompt.length, ['sure', ',', '[SEG]', '[SEG]', 'it', '.', '</s>']));
  });
  afterAll(() => releasePack(pack));

  async function run(maxNewTokens = 512) {
    const ids = prompt.map((t) => vocabIds[t]!);
    return generate({
      pack,
      embeds: await embedTokens(pack, ids),
      count: ids.length,
      kv: emptyKv(pack),
      maxNewTokens,
      contextLength: manifest.decoder.contextLength,
      segId: vocabIds['[SEG]']!,
      eosId: vocabIds['</s>']!,
      throwIfAborted: () => undefined,
    });
  }

  it('uses the hidden state of the step that produced each [SEG] (the offset rule)', async () => {
    const result = await run();
    expect(result.ids).toEqual(['sure', ',', '[SEG]', '[SEG]', 'it', '.'].map((t) => vocabIds[t]));
    // The first [SEG] comes from the step at position P+1 (hidden P+2), the second from P+2.
    const P = prompt.length;
    expect(result.segHidden.map((h) => h[0])).toEqual([P + 2, P + 3]);
    // Everything fed to the decoder is in the cache; the stopping </s> is not.
    expect(result.kv.length).toBe(P + result.fedIds.length);
    expect(result.fedIds).toEqual(result.ids);
  });

  it('stops after maxNewTokens', async () => {
    const result = await run(3);
    expect(result.ids).toHaveLength(3);
    expect(result.segHidden).toHaveLength(1);
  });
});

describe('greedy generation with prompt-lookup drafts', () => {
  // Earlier text the drafts are looked up in: a previous answer, as in a follow-up.
  const history = ['<s>', 'where', 'is', 'it', '?', 'sure', ',', 'it', '.', '</s>', 'and', 'now', '?'];
  const packs: LoadedPack[] = [];
  afterAll(async () => {
    for (const pack of packs) await releasePack(pack);
  });

  async function answer(tokens: string[], options: { draftLength: number; maxNewTokens?: number }) {
    const pack = await openPack(await scriptedPack(`drafts-${tokens.join('-').replace(/[^a-z]/gi, 'x')}`, history.length, tokens));
    packs.push(pack);
    const ids = history.map((t) => vocabIds[t]!);
    let runs = 0;
    const run = pack.sessions.decoder.run.bind(pack.sessions.decoder);
    pack.sessions.decoder.run = ((...args: Parameters<typeof run>) => {
      runs++;
      return run(...args);
    }) as typeof run;
    const result = await generate({
      pack,
      embeds: await embedTokens(pack, ids),
      count: ids.length,
      kv: emptyKv(pack),
      maxNewTokens: options.maxNewTokens ?? 512,
      contextLength: manifest.decoder.contextLength,
      segId: vocabIds['[SEG]']!,
      eosId: vocabIds['</s>']!,
      throwIfAborted: () => undefined,
      context: ids,
      draftLength: options.draftLength,
    });
    return { result, runs, key: Array.from(result.kv.tensors['past_key_values.0.key']!.data as Float32Array) };
  }

  const cases: Array<[string, string[], number | undefined]> = [
    ['the answer repeats the earlier one', ['sure', ',', 'it', '.', '</s>'], undefined],
    ['the draft is right only in part', ['sure', ',', '[SEG]', '[SEG]', 'it', '.', '</s>'], undefined],
    ['the limit falls inside an accepted draft', ['sure', ',', 'it', '.', '</s>'], 3],
    ['the earlier answer is not repeated at all', ['no', '[SEG]', '.', '</s>'], undefined],
  ];
  it.each(cases)('answers exactly as one token per run when %s', async (_, tokens, maxNewTokens) => {
    const plain = await answer(tokens, { draftLength: 0, maxNewTokens });
    const drafted = await answer(tokens, { draftLength: 8, maxNewTokens });
    expect(drafted.result.ids).toEqual(plain.result.ids);
    expect(drafted.result.segHidden.map((h) => h[0])).toEqual(plain.result.segHidden.map((h) => h[0]));
    expect(drafted.result.fedIds).toEqual(plain.result.fedIds);
    expect(drafted.result.kv.length).toBe(history.length + drafted.result.fedIds.length);
    expect(drafted.key).toEqual(plain.key);
    expect(drafted.runs).toBeLessThanOrEqual(plain.runs);
    expect(drafted.result.drafts.proposed).toBeGreaterThan(0);
  });

  it('decodes a repeated answer in far fewer decoder runs', async () => {
    const tokens = ['sure', ',', 'it', '.', '</s>'];
    const plain = await answer(tokens, { draftLength: 0 });
    const drafted = await answer(tokens, { draftLength: 8 });
    expect(plain.result.decodeRuns).toBe(4);
    // 'sure' comes from the prefill; one run then checks ', it . </s>' and accepts all of it.
    expect(drafted.result.decodeRuns).toBe(1);
    expect(drafted.result.drafts.accepted).toBeGreaterThanOrEqual(3);
  });
});

describe('the engine with scripted answers', () => {
  it('gives one mask per [SEG], in order, and keeps both markers in the text', async () => {
    // The prompt length is only known once tokenised: build the script for it.
    const probe = await Engine.open(toy.dir, { images: files });
    const turns = [{ user: 'the red one and the blue one' }];
    const positions = probe.countPromptTokens(turns);
    await probe.close();
    const dir = await scriptedPack('engine-segs', positions, ['sure', ',', '[SEG]', 'and', '[SEG]', '.', '</s>']);
    const scripted = await Engine.open(dir, { images: files });
    const image = await encodeImage(drawShapes(160, 120, [{ colour: 'red', kind: 'rect', x: 10, y: 10, w: 50, h: 40 }]), 'png');
    const result = await scripted.chat({ imageHash: files.add(image), turns });
    await scripted.close();
    expect(result.text).toBe('Sure, [SEG] and [SEG].');
    expect(result.segments).toHaveLength(2);
    for (const s of result.segments) expect(s.rle.size).toEqual([120, 160]);
  });

  it('gives no mask, and no error, when the answer has no [SEG]', async () => {
    const probe = await Engine.open(toy.dir, { images: files });
    const turns = [{ user: 'is there a cat ?' }];
    const positions = probe.countPromptTokens(turns);
    await probe.close();
    const engine = await Engine.open(await scriptedPack('no-seg', positions, ['no', '.', '</s>']), { images: files });
    const image = await encodeImage(drawShapes(64, 48, []), 'png');
    const result = await engine.chat({ imageHash: files.add(image), turns });
    await engine.close();
    expect(result.text).toBe('no.');
    expect(result.segments).toEqual([]);
  });
});

describe('float16 helpers', () => {
  it('reads half floats exactly', () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
  });
});
