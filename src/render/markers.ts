/**
 * Replaces each `[SEG]` of an answer, in order, with a marker for its mask
 * ("[mask 1]" in a terminal, a coloured square in chat), so the text points at
 * the overlay colour of the mask it produced.
 */
export function replaceSegTokens(text: string, segToken: string, marker: (index: number) => string): string {
  let index = 0;
  return text.split(segToken).reduce((out, piece, i) => (i === 0 ? piece : `${out}${marker(index++)}${piece}`), '');
}
