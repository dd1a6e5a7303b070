/**
 * The Hugging Face tokenizer.json that gives, in @huggingface/tokenizers,
 * the ids of transformers 4.31's slow LlamaTokenizer (legacy):
 *
 * - added/special tokens are matched in the raw text (`normalized: false`),
 *   with lstrip/rstrip as 4.31 strips around them (checkpoint-tokens.ts);
 * - the normaliser, run on each piece of text between them, is sentencepiece's
 *   identity normaliser: a `▁` before the piece, spaces to `▁`; no
 *   pre-tokeniser, so BPE sees the whole piece as sentencepiece does;
 * - BPE merges are sentencepiece's: sentencepiece merges the adjacent pair
 *   whose concatenation is the best-scoring piece (leftmost first), so every
 *   split of a piece into two symbols sentencepiece can hold (a piece or a
 *   single character) is a merge, ranked by the piece's score;
 * - byte fallback spells anything else as `<0xNN>` pieces.
 *
 * The decoder gives 4.31's `decode(ids, skip_special_tokens=True)`: runs of
 * pieces lose one leading space (sentencepiece's dummy prefix) and added
 * tokens are joined to their neighbours with one space, so `is [SEG].` comes
 * back as `is [SEG] .`, which is what LISA prints.
 */
import type { CheckpointTokens } from './checkpoint-tokens.js';
import type { SentencePieceModel } from './sentencepiece.js';

const SPACE = '\u2581';

export function llamaTokenizerJson(sp: SentencePieceModel, tokens: CheckpointTokens): Record<string, unknown> {
  const unk = sp.pieces[sp.unkId]!.piece;
  const special = (content: string) => {
    const rule = tokens.rules.find((r) => r.content === content);
    if (!rule) throw new Error(`${content} is not a special token of this checkpoint`);
    return { id: content, ids: [rule.id], tokens: [content] };
  };
  const template = (sequence: 'A' | 'B', typeId: number) => [
    ...(tokens.addBos ? [{ SpecialToken: { id: tokens.bos!, type_id: typeId } }] : []),
    { Sequence: { id: sequence, type_id: typeId } },
    ...(tokens.addEos ? [{ SpecialToken: { id: tokens.eos!, type_id: typeId } }] : []),
  ];
  const templateTokens = [...(tokens.addBos ? [tokens.bos!] : []), ...(tokens.addEos ? [tokens.eos!] : [])];
  const added = tokens.rules.filter((r) => r.added).map((r) => r.content);

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tokens.rules.map((r) => ({
      id: r.id,
      content: r.content,
      single_word: false,
      lstrip: r.lstrip,
      rstrip: r.rstrip,
      normalized: false,
      special: r.special,
    })),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: template('A', 0),
      pair: [...template('A', 0), ...template('B', 1)],
      special_tokens: Object.fromEntries(templateTokens.map((t) => [t, special(t)])),
    },
    decoder: { type: 'Sequence', decoders: decoders(added) },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(sp.pieces.map((p, id) => [p.piece, id])),
      merges: bpeMerges(sp),
    },
  };
}

/**
 * 4.31 decodes each run of ordinary pieces with sentencepiece (dropping the
 * run's first `▁`) and joins runs and added tokens with " ". Here: a space
 * before every added token (the Strip removes it again when the text starts
 * with one), and one after it unless the next run starts with its own space.
 */
function decoders(added: string[]): Record<string, unknown>[] {
  const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  const before = added.map((t) => ({ type: 'Replace', pattern: { Regex: `\\A${escape(t)}\\z` }, content: ` ${t}` }));
  const after = added.length === 0 ? [] : [{ type: 'Replace', pattern: { Regex: `(?<=${added.map(escape).join('|')})(?=[^ ])` }, content: ' ' }];
  return [
    { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
    ...before,
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
    ...after,
  ];
}

interface Merge {
  left: string;
  right: string;
  score: number;
  id: number;
  leftId: number;
  rightId: number;
}

/**
 * Sentencepiece's BPE joins two adjacent symbols when their concatenation is
 * a normal piece, best score first. A symbol is a single character of the
 * input or a piece made by an earlier join, so a split counts when each half
 * is one character or a normal piece. Splits of one piece keep the
 * vocabulary order of their halves.
 */
export function bpeMerges(sp: SentencePieceModel): [string, string][] {
  const normal = new Map<string, number>();
  sp.pieces.forEach((p, id) => {
    if (p.type === 'NORMAL') normal.set(p.piece, id);
  });
  const merges: Merge[] = [];
  sp.pieces.forEach((p, id) => {
    if (p.type !== 'NORMAL') return;
    const chars = Array.from(p.piece);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const leftId = normal.get(left);
      const rightId = normal.get(right);
      if ((k === 1 || leftId !== undefined) && (chars.length - k === 1 || rightId !== undefined)) {
        merges.push({ left, right, score: p.score, id, leftId: leftId ?? Infinity, rightId: rightId ?? Infinity });
      }
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.leftId - b.leftId || a.rightId - b.rightId);
  return merges.map((m) => [m.left, m.right]);
}
