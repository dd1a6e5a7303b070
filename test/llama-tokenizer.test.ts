/**
 * The converter's tokenizer.json, run by the engine's tokenizer
 * (@huggingface/tokenizers), against transformers 4.31's slow LlamaTokenizer
 * rules (models/reference/llama_tokenizer.py) over sentencepiece models
 * trained with LLaMA's settings: whole LISA prompts, awkward text, typed
 * special-token text, decoding, and the checkpoints it must refuse.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserInputError } from '../src/errors.js';
import type { PackManifest } from '../src/engine/manifest.js';
import { buildPrompt, promptText } from '../src/engine/prompt.js';
import { IMAGE_SLOT, LisaTokenizer } from '../src/engine/tokenizer.js';
import type { ChatTurn } from '../src/engine/types.js';
import { LLAVA_LLAMA_2_SYSTEM, LLAVA_V1_SYSTEM } from '../models/generator/pack-files.js';
import { type PackTokenizer, writePackTokenizer } from '../models/converter/tokenizer/index.js';
import { pythonAvailability } from './helpers/python.js';

const py = pythonAvailability();

type Request = { encode: string; special?: boolean } | { image_prompt: string } | { decode: number[]; skip_special?: boolean } | { sp: string };

const QUESTIONS = [
  'Can you segment the red car in this image?',
  'What is the thing that keeps me dry?\nPlease output segmentation mask.',
  '  leading spaces, trailing spaces  ',
  'double  spaces   and\ttabs\t\tand a trailing newline\n',
  '\n\nnewlines first',
  'Emoji 😀🎉 and 👩‍👩‍👧, 日本語のテキスト, ελληνικά, 한국어 (bytes for what the vocabulary lacks)',
  'Digits 3.14159, 2024-01-01, 1234567890 and room 42',
  'Café crème brûlée über naïve señor',
  '▁ the metaspace character typed by hand ▁▁',
  "Don't   worry — it's   fine.",
];

// Text a person types that spells the checkpoint's special tokens.
const TYPED_SPECIALS = ['what is [SEG]?', 'end it </s> and <s> start again', '<im_start><im_end> [SEG][SEG] <unk> <im_patch>', 'x</s>'];

describe.skipIf(py.skip)('LISA tokenizer.json against transformers 4.31 slow LlamaTokenizer', () => {
  let dir: string;
  const packs: Record<string, { dir: string; result: PackTokenizer; engine: LisaTokenizer; raw: Tokenizer; manifest: PackManifest }> = {};

  const reference = (checkpoint: string, requests: Request[]): unknown[] =>
    JSON.parse(
      execFileSync(py.python, ['models/reference/llama_tokenizer_cli.py', path.join(dir, checkpoint)], {
        input: JSON.stringify(requests),
        maxBuffer: 64 * 1024 * 1024,
      }).toString('utf8'),
    );

  const manifestFor = (template: 'llava_v1' | 'llava_llama_2', result: PackTokenizer) =>
    ({
      tokenizer: 'tokenizer.json',
      template,
      system: template === 'llava_v1' ? LLAVA_V1_SYSTEM : LLAVA_LLAMA_2_SYSTEM,
      tokens: { ...result.tokens, image: '<image>' },
    }) as unknown as PackManifest;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-tokenizers-'));
    execFileSync(py.python, ['test/fixtures/make_tokenizer_checkpoints.py', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    for (const [name, template] of [['lisa-7b', 'llava_v1'], ['lisa-13b', 'llava_llama_2']] as const) {
      const out = path.join(dir, `${name}-pack`);
      await mkdir(out);
      const result = await writePackTokenizer(path.join(dir, name), out, name === 'lisa-7b' ? 604 : 603);
      const manifest = manifestFor(template, result);
      const tokenizerJson = JSON.parse(await readFile(result.tokenizerJson, 'utf8'));
      const config = JSON.parse(await readFile(result.tokenizerConfig, 'utf8'));
      packs[name] = { dir: out, result, manifest, engine: await LisaTokenizer.load(out, manifest), raw: new Tokenizer(tokenizerJson, config) };
    }
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('takes the added-token ids from added_tokens.json, in either published order', () => {
    expect(packs['lisa-7b']!.result.ids).toEqual({ seg: 603, imageStart: 601, imageEnd: 602, eos: 2, bos: 1, unk: 0 });
    expect(packs['lisa-7b']!.result.vocabSize).toBe(604);
    expect(packs['lisa-13b']!.result.ids).toEqual({ seg: 600, imageStart: 601, imageEnd: 602, eos: 2, bos: 1, unk: 0 });
    expect(packs['lisa-13b']!.result.vocabSize).toBe(603);
    expect(packs['lisa-7b']!.raw.token_to_id('<im_patch>')).toBe(600);
    expect(packs['lisa-7b']!.engine.segId).toBe(603);
  });

  for (const [name, template] of [['lisa-7b', 'llava_v1'], ['lisa-13b', 'llava_llama_2']] as const) {
    it(`gives the reference's ids for whole ${template} prompts (${name})`, () => {
      const { engine, manifest } = packs[name]!;
      const conversations: ChatTurn[][] = QUESTIONS.flatMap((q) => [
        [{ user: q }],
        [{ user: 'Segment the umbrella.', assistant: 'Sure, it is [SEG].' }, { user: q }],
        [{ user: q, assistant: 'Sure, [SEG] and [SEG] .' }, { user: 'and now?', assistant: ' It is  [SEG]. ' }, { user: q }],
      ]);
      const prompts = conversations.map((turns) => buildPrompt(manifest, turns));
      const expected = reference(name, prompts.map((parts) => ({ image_prompt: promptText(manifest, parts) })));
      prompts.forEach((parts, i) => {
        const ids = engine.encodePrompt(parts);
        expect(ids.filter((id) => id === IMAGE_SLOT)).toHaveLength(1);
        expect({ prompt: promptText(manifest, parts), ids }).toEqual({ prompt: promptText(manifest, parts), ids: expected[i] });
      });
    });

    it(`keeps typed special-token text plain, as the reference tokenises those pieces (${name})`, () => {
      const { engine, manifest, result } = packs[name]!;
      const prompts = TYPED_SPECIALS.flatMap((q) => [buildPrompt(manifest, [{ user: q }]), buildPrompt(manifest, [{ user: 'hi', assistant: 'Sure, it is [SEG].' }, { user: q }])]);
      for (const parts of prompts) {
        // The engine's rule: user text without added tokens, template text with them, one BOS.
        const requests: Request[] = parts.flatMap((p): Request[] => (p.kind === 'image' ? [] : p.kind === 'user' ? [{ sp: p.text }] : [{ encode: p.text, special: false }]));
        const pieces = reference(name, requests) as number[][];
        const expected: number[] = [result.ids.bos!];
        let next = 0;
        for (const part of parts) {
          if (part.kind === 'image') expected.push(IMAGE_SLOT);
          else expected.push(...pieces[next++]!);
        }
        const ids = engine.encodePrompt(parts);
        expect(ids).toEqual(expected);
        // Only the bot's own answers put [SEG] tokens into the prompt.
        const answerSegs = parts.reduce((n, p) => n + (p.kind === 'template' ? p.text.split('[SEG]').length - 1 : 0), 0);
        expect(ids.filter((id) => id === result.ids.seg)).toHaveLength(answerSegs);
      }
    });
  }

  it('encodes any text, added tokens and whitespace around them included, as 4.31 does', () => {
    const fixed = [
      '',
      ' ',
      '   ',
      '\n',
      'hello',
      ' hello',
      'hello ',
      'is [SEG].',
      'is[SEG]x',
      '[SEG]',
      ' [SEG] ',
      '\n[SEG]\n',
      '<im_start> <im_end>\n q',
      'a </s> b',
      '</s></s> <s> <unk>x',
      'USER: <im_start><im_end>\nWhat? ASSISTANT: Sure, it is [SEG].</s>USER: next ASSISTANT:',
      '[INST] <<SYS>>\nsys\n<</SYS>>\n\n<im_start><im_end>\nq [/INST] a </s><s>[INST] q2 [/INST]',
      '😀',
      '\u00a0non-breaking\u3000ideographic space',
      'x\u00a0[SEG]\u3000\r\ny',
    ];
    // Deterministic random strings over words, added tokens, spaces, newlines and multi-byte text.
    const alphabet = ['the', 'an', 'a', 'segment', 'is', ' ', '  ', '\n', '\t', '.', ',', '?', '[SEG]', '<im_start>', '<im_end>', '</s>', '<s>', 'é', '日', '😀', '7', '42', 'USER', ':', '▁', 'ss', 'ee'];
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const fuzz = Array.from({ length: 400 }, () => Array.from({ length: 1 + Math.floor(random() * 10) }, () => alphabet[Math.floor(random() * alphabet.length)]).join(''));
    for (const name of ['lisa-7b', 'lisa-13b']) {
      const { raw } = packs[name]!;
      const texts = [...fixed, ...QUESTIONS, ...TYPED_SPECIALS, ...fuzz];
      const expected = reference(name, texts.map((t) => ({ encode: t })));
      const mismatches = texts.map((t, i) => ({ text: t, ids: raw.encode(t).ids, expected: expected[i] })).filter((m) => JSON.stringify(m.ids) !== JSON.stringify(m.expected));
      expect(mismatches).toEqual([]);
    }
  });

  it('decodes answers to the text 4.31 gives, and that text tokenises back to the same ids', () => {
    const answers = [
      'Sure, it is [SEG].',
      'Sure, [SEG] and [SEG] .',
      '[SEG] first, then text',
      'text then [SEG]',
      '[SEG][SEG]',
      "It's the umbrella 😀 on the left,\nnext to the 日本 sign (room 42).",
      '  spaced  out  ',
    ];
    const { engine, raw } = packs['lisa-7b']!;
    const ids = reference('lisa-7b', answers.map((a) => ({ encode: a, special: false }))) as number[][];
    // What the model generates: the answer, then </s>.
    const generated = ids.map((a) => [...a, 2]);
    const expected = reference('lisa-7b', generated.map((g) => ({ decode: g, skip_special: true }))) as string[];
    const texts = generated.map((g) => engine.decode(g));
    expect(texts).toEqual(expected);
    expect(texts[0]).toBe('Sure, it is [SEG] .');
    expect(texts[4]).toBe('[SEG] [SEG]');
    const again = reference('lisa-7b', texts.map((t) => ({ encode: t, special: false }))) as number[][];
    texts.forEach((text, i) => expect({ text, ids: again[i] }).toEqual({ text, ids: ids[i] }));

    // A model may also generate what no text encodes to: "." glued to [SEG], a lone "▁", <s>, <unk>, bytes.
    const id = (piece: string) => {
      const found = raw.token_to_id(piece);
      expect(found, piece).toBeTypeOf('number');
      return found!;
    };
    const odd = [
      [id('▁is'), 603, id('.'), 2],
      [603, id(','), id('▁'), 603, id('a')],
      [id('▁'), 603, id('▁'), id('▁'), id('a')],
      [1, id('a'), 0, 603, 601, 602, 600, id('<0x0A>'), id('<0xF0>'), id('<0x9F>'), id('<0x98>'), id('<0x80>')],
    ];
    const oddExpected = reference('lisa-7b', odd.map((g) => ({ decode: g, skip_special: true })));
    expect(odd.map((g) => engine.decode(g))).toEqual(oddExpected);
    expect(engine.decode(odd[0]!)).toBe('is [SEG] .');
  });

  it('refuses checkpoints it cannot convert faithfully, naming the file', async () => {
    const cases: [string, string, RegExp][] = [
      ['bad-unigram', 'tokenizer.model', /UNIGRAM model; only BPE/],
      ['bad-nfkc', 'tokenizer.model', /"nmt_nfkc" normaliser/],
      ['bad-collapse', 'tokenizer.model', /collapses whitespace/],
      ['bad-no-bytes', 'tokenizer.model', /no byte fallback/],
      ['bad-not-sp', 'tokenizer.model', /is not a sentencepiece model/],
      ['bad-legacy', 'tokenizer_config.json', /"legacy": false/],
      ['bad-gap', 'added_tokens.json', /gives "<im_start>" the id 601; transformers 4.31 needs the next free id, 600/],
      ['bad-no-seg', 'added_tokens.json', /has no "\[SEG\]" token/],
    ];
    for (const [name, file, why] of cases) {
      const out = path.join(dir, `${name}-pack`);
      await mkdir(out, { recursive: true });
      const error = await writePackTokenizer(path.join(dir, name), out).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, name).toBeInstanceOf(UserInputError);
      expect((error as UserInputError).code).toBe('checkpoint_invalid');
      expect((error as UserInputError).message).toContain(path.join(dir, name, file));
      expect((error as UserInputError).message).toMatch(why);
    }
    const tooFew = await writePackTokenizer(path.join(dir, 'lisa-7b'), path.join(dir, 'bad-unigram-pack'), 602).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((tooFew as UserInputError).message).toMatch(/make 604 tokens, but config.json's vocab_size is 602/);
  });
});
