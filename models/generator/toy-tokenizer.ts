/**
 * The toy pack's vocabulary and its Hugging Face `tokenizer.json`.
 *
 * Design, driven by what @huggingface/tokenizers (the JS library the engine
 * uses) supports and by LISA's own tokenizer:
 * - Lowercase normaliser + BertPreTokenizer: splits on whitespace and on every
 *   punctuation character separately, so text a user types as `[SEG]` or
 *   `</s>` becomes `[`, `seg`, `]` / `<`, `/`, `s`, `>` — plain tokens.
 * - Model: WordPiece over whole words only (no `##` pieces), which behaves
 *   exactly like WordLevel: a known word is one token, anything else is
 *   `<unk>`. The JS library has no WordLevel model (it maps that type to a
 *   "Legacy" model whose `<unk>` id comes from tokenizer_config.json), while
 *   its WordPiece reads `unk_token` from tokenizer.json itself — so the pack
 *   needs no tokenizer_config.json and the engine may pass `{}` as the config.
 * - Decoder: a Replace that capitalises the answer's first word, then
 *   WordPiece with cleanup, which joins tokens with spaces and removes the
 *   space before `,` `.` `?` `!`: `sure , it is [SEG] .` decodes to
 *   `Sure, it is [SEG].`. The answer's tokens are lowercase like all input,
 *   so the answer re-tokenised in a follow-up's prompt has the very ids that
 *   were generated, and the follow-up reuses the KV cache of the whole answer.
 * - `<unk>`=0, `<s>`=1, `</s>`=2 are special (dropped by skip_special_tokens);
 *   `[SEG]`, `<im_start>`, `<im_end>` are added tokens with the last ids, as in
 *   LISA, and NOT special, so `[SEG]` survives decoding. They are matched in
 *   the raw text case-sensitively (`normalized: false`), as in LISA.
 * - TemplateProcessing prepends `<s>` when add_special_tokens is true.
 */

export const TOY_UNK = '<unk>';
export const TOY_BOS = '<s>';
export const TOY_EOS = '</s>';
export const TOY_SEG = '[SEG]';
export const TOY_IM_START = '<im_start>';
export const TOY_IM_END = '<im_end>';
/** Not a token: the engine splits the prompt where it stands. */
export const TOY_IMAGE = '<image>';

/**
 * The next-token chain the decoder follows after the prompt's final `:` of
 * `ASSISTANT:`. Every other token is followed by `</s>`.
 */
export const TOY_ANSWER_CHAIN: readonly string[] = [':', 'sure', ',', 'it', 'is', TOY_SEG, '.', TOY_EOS];

const SPECIAL_TOKENS = [TOY_UNK, TOY_BOS, TOY_EOS];
const ADDED_TOKENS = [TOY_SEG, TOY_IM_START, TOY_IM_END];

/** ASCII punctuation: BertPreTokenizer makes each of these a token of its own. */
const PUNCTUATION = [...'.,?!:;\'"()[]{}<>/\\-_+=*&%$#@^~`|'];

const DIGITS = [...'0123456789'];

/**
 * Whole words, lowercase (the normaliser lowercases input). Covers the LLaVA
 * system prompt and template, the palette, shapes and objects, and the words
 * people use to ask for a segmentation.
 */
const WORDS = `
a an the and or but not no yes of to in on at by for with without from into onto over under about as than then
chat between curious human artificial intelligence assistant gives give helpful detailed polite answers answer
questions question user s t m re ve ll d
red green blue yellow purple orange black white gray grey pink brown colour color colours colors coloured colored
square squares circle circles rectangle rectangles triangle triangles shape shapes region regions object objects
car cars cup cups ball balls box boxes dot dots spot star line lines stripe block blocks area part parts piece
thing things item items one ones blob patch disk disc oval ring background foreground picture image photo
mask segment segmentation seg im start end apple banana flower tree house dog cat person man woman people
shirt hat door window sign sky grass road table chair bottle book phone bag
what where which who whom whose why how when is are was were be been being am do does did done can could would
should will shall may might must have has had please show find highlight mark outline select point tell
me us you i it its this that these those there here now then also again instead too other another same
different left right top bottom middle center centre corner side up down above below near next behind front
inside outside all any some each every both either neither only just very more most less least much many few
big bigger biggest small smaller smallest large larger largest little tiny huge long short tall wide narrow
round bright dark light first second third last two three four five six seven eight nine ten
sure okay ok thanks thank hello hi hey my your his her their our mine yours see look looks like want need
let make get go take put use try cut separate identify locate detect label color
so if because while after before until again ever never always something anything nothing everything
`;

export interface ToyVocab {
  /** Token text by id: `tokens[id]`; the added tokens are the last three. */
  tokens: readonly string[];
  /** Size of the model's own vocabulary (the added tokens follow it). */
  modelSize: number;
  id(token: string): number;
}

/** The vocabulary, in a fixed order: specials, punctuation, digits, words, added tokens. */
export function buildToyVocab(): ToyVocab {
  const words = WORDS.split(/\s+/).filter((w) => w.length > 0 && !/[^a-z]/.test(w));
  const model: string[] = [];
  const seen = new Set<string>();
  for (const token of [...SPECIAL_TOKENS, ...PUNCTUATION, ...DIGITS, ...words]) {
    if (seen.has(token)) continue; // the word list may repeat itself harmlessly
    seen.add(token);
    model.push(token);
  }
  const tokens = [...model, ...ADDED_TOKENS];
  const index = new Map(tokens.map((t, i) => [t, i] as const));
  return {
    tokens,
    modelSize: model.length,
    id(token: string): number {
      const id = index.get(token);
      if (id === undefined) throw new Error(`toy vocabulary has no token ${JSON.stringify(token)}`);
      return id;
    },
  };
}

/** The Hugging Face `tokenizer.json` object for the vocabulary. */
export function toyTokenizerJson(vocab: ToyVocab): Record<string, unknown> {
  const addedToken = (content: string, special: boolean) => ({
    id: vocab.id(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special,
  });
  const modelVocab: Record<string, number> = {};
  for (let id = 0; id < vocab.modelSize; id++) modelVocab[vocab.tokens[id]!] = id;
  const bos = { id: TOY_BOS, type_id: 0 };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...SPECIAL_TOKENS.map((t) => addedToken(t, true)), ...ADDED_TOKENS.map((t) => addedToken(t, false))],
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: bos }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: bos }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: TOY_BOS, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [TOY_BOS]: { id: TOY_BOS, ids: [vocab.id(TOY_BOS)], tokens: [TOY_BOS] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { Regex: '^sure$' }, content: 'Sure' },
        { type: 'WordPiece', prefix: '##', cleanup: true },
      ],
    },
    model: {
      type: 'WordPiece',
      unk_token: TOY_UNK,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: modelVocab,
    },
  };
}
