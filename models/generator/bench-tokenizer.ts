/**
 * The bench pack's vocabulary: the toy pack's (special tokens, punctuation,
 * digits and a few hundred English words, so prompts and questions tokenise
 * to real tokens) padded with made-up lowercase words up to a LLaMA-like
 * vocabulary size of thousands, and the same tokenizer.json design as the toy
 * (see toy-tokenizer.ts), minus its "Sure" capitalisation.
 *
 * Follow-ups reuse the KV cache only if the answer, decoded and tokenised
 * again in the next prompt, gives back the very ids that were generated. The
 * answers use made-up words only (lowercase letters, never an English word):
 * the WordPiece decoder joins them with single spaces, the Lowercase
 * normaliser leaves them alone, and its cleanup rules (which touch punctuation
 * and "do not") never apply, so the round trip is exact.
 */
import { randomStream, seedOf } from './bench-random.js';
import { TOY_SEG, type ToyVocab, buildToyVocab, toyTokenizerJson } from './toy-tokenizer.js';

const CONSONANTS = [...'bdfgklmnprstvz'];
const VOWELS = [...'aeiou'];

/** `count` distinct made-up words of 2-3 syllables, none of them in `taken`. */
function madeUpWords(count: number, taken: ReadonlySet<string>, seed: string): string[] {
  const next = randomStream(seedOf(seed));
  const pick = <T>(list: readonly T[]) => list[Math.floor(next() * list.length)]!;
  const words: string[] = [];
  const seen = new Set(taken);
  while (words.length < count) {
    const syllables = next() < 0.5 ? 2 : 3;
    let word = '';
    for (let i = 0; i < syllables; i++) word += pick(CONSONANTS) + pick(VOWELS);
    if (next() < 0.3) word += pick(CONSONANTS);
    if (seen.has(word)) continue;
    seen.add(word);
    words.push(word);
  }
  return words;
}

export interface BenchVocab extends ToyVocab {
  /** The fixed answer, as token texts (made-up words and one `[SEG]`), before `</s>`. */
  answer: readonly string[];
}

/**
 * `size` tokens in all (the three added tokens last, as in LISA); the answer
 * has `answerLength` tokens with `[SEG]` at index `segAt`.
 */
export function buildBenchVocab(size: number, answerLength: number, segAt: number, seed: string): BenchVocab {
  const toy = buildToyVocab();
  const base = toy.tokens.slice(0, toy.modelSize);
  const added = toy.tokens.slice(toy.modelSize);
  const fill = size - base.length - added.length;
  if (fill < answerLength) throw new Error(`bench vocabulary of ${size} is too small`);
  const words = madeUpWords(fill, new Set(toy.tokens), `${seed}/vocab`);
  const tokens = [...base, ...words, ...added];
  const index = new Map(tokens.map((t, i) => [t, i] as const));
  // Answer words from the middle of the made-up range: nothing special about them.
  const answer = words.slice(Math.floor(fill / 2), Math.floor(fill / 2) + answerLength - 1);
  answer.splice(segAt, 0, TOY_SEG);
  return {
    tokens,
    modelSize: base.length + words.length,
    answer,
    id(token: string): number {
      const id = index.get(token);
      if (id === undefined) throw new Error(`bench vocabulary has no token ${JSON.stringify(token)}`);
      return id;
    },
  };
}

/** tokenizer.json: the toy's, with a plain WordPiece decoder (answers stay lowercase). */
export function benchTokenizerJson(vocab: BenchVocab): Record<string, unknown> {
  return { ...toyTokenizerJson(vocab), decoder: { type: 'WordPiece', prefix: '##', cleanup: true } };
}
