/**
 * Draft tokens for speculative decoding by prompt lookup: when the last few
 * tokens of the text so far occurred earlier in the conversation, the tokens
 * that followed them then are a guess at what comes next. LISA's answers are
 * templated ("Sure, it is [SEG].") and follow-ups repeat them, so a follow-up's
 * answer is often found whole in its own history.
 *
 * The decoder checks a whole draft in one run (a decoding step reads every
 * weight whether it scores one position or ten), and greedy decoding keeps only
 * the draft tokens it would have chosen itself, so the answer is the one
 * step-by-step decoding gives; a wrong guess costs one slightly longer run.
 */

/** Longest n-gram tried first: longer matches are likelier to continue the same way. */
const MAX_NGRAM = 3;

/**
 * Up to `max` tokens that followed the latest earlier occurrence of the
 * longest suffix (MAX_NGRAM tokens down to one) of `context` + `generated`;
 * empty when nothing matches. Negative ids (image slots) never match.
 */
export function lookupDraft(context: readonly number[], generated: readonly number[], max: number): number[] {
  if (max <= 0) return [];
  const length = context.length + generated.length;
  const at = (i: number) => (i < context.length ? context[i]! : generated[i - context.length]!);
  for (let n = Math.min(MAX_NGRAM, length - 1); n >= 1; n--) {
    // Latest occurrence first: it is the nearest in the conversation to what is being said now.
    for (let start = length - n - 1; start >= 0; start--) {
      let matches = true;
      for (let j = 0; j < n; j++) {
        const id = at(start + j);
        if (id < 0 || id !== at(length - n + j)) {
          matches = false;
          break;
        }
      }
      if (!matches) continue;
      const draft: number[] = [];
      for (let i = start + n; i < length && draft.length < max; i++) {
        const id = at(i);
        if (id < 0) break;
        draft.push(id);
      }
      if (draft.length > 0) return draft;
    }
  }
  return [];
}
