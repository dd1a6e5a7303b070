import type { PackManifest } from './manifest.js';
import type { ChatTurn } from './types.js';

/**
 * A prompt as the reference builds it, kept as parts so that the image splice
 * and the user's own text are never found by searching the string: a user who
 * types `<image>` or `[SEG]` gets plain text, not a special token.
 *
 * - `template`: text the bot writes (system prompt, roles, separators, and the
 *   model's own earlier answers, whose `[SEG]` must stay the special token);
 * - `user`: text a person typed;
 * - `image`: where the image feature rows go.
 */
export type PromptPart = { kind: 'template'; text: string } | { kind: 'user'; text: string } | { kind: 'image' };

export function buildPrompt(manifest: PackManifest, turns: readonly ChatTurn[]): PromptPart[] {
  if (turns.length === 0) throw new Error('a prompt needs at least one turn');
  turns.slice(0, -1).forEach((turn, i) => {
    if (turn.assistant === undefined) throw new Error(`turn ${i + 1} of ${turns.length} has no answer`);
  });
  const { imageStart, imageEnd } = manifest.tokens;
  // LISA's chat.py: "<image>\n" + question, with <image> wrapped in <im_start>/<im_end>.
  const imageQuestion = (question: string): PromptPart[] => [
    { kind: 'template', text: imageStart },
    { kind: 'image' },
    { kind: 'template', text: `${imageEnd}\n` },
    { kind: 'user', text: question },
  ];
  return manifest.template === 'llava_v1'
    ? llavaV1(manifest, turns, imageQuestion)
    : llavaLlama2(manifest, turns, imageQuestion);
}

/** LLaVA `conv_vicuna_v1` (SeparatorStyle.TWO, sep " ", sep2 "</s>"). */
function llavaV1(manifest: PackManifest, turns: readonly ChatTurn[], imageQuestion: (q: string) => PromptPart[]): PromptPart[] {
  const eos = manifest.tokens.eos;
  const parts: PromptPart[] = [{ kind: 'template', text: `${manifest.system} USER: ` }];
  turns.forEach((turn, i) => {
    if (i > 0) parts.push({ kind: 'template', text: 'USER: ' });
    parts.push(...(i === 0 ? imageQuestion(turn.user) : [{ kind: 'user' as const, text: turn.user }]));
    parts.push({ kind: 'template', text: turn.assistant === undefined ? ' ASSISTANT:' : ` ASSISTANT: ${turn.assistant}${eos}` });
  });
  return mergeTemplateParts(parts);
}

/** LLaVA `conv_llava_llama_2` (SeparatorStyle.LLAMA_2, sep "<s>", sep2 "</s>"). */
function llavaLlama2(manifest: PackManifest, turns: readonly ChatTurn[], imageQuestion: (q: string) => PromptPart[]): PromptPart[] {
  const eos = manifest.tokens.eos;
  const parts: PromptPart[] = [];
  turns.forEach((turn, i) => {
    // The reference strips the leading "<s>" of the whole prompt (ret.lstrip(sep)).
    parts.push({ kind: 'template', text: i === 0 ? '[INST] ' : '<s>[INST] ' });
    if (i === 0) parts.push({ kind: 'template', text: `<<SYS>>\n${manifest.system}\n<</SYS>>\n\n` });
    parts.push(...(i === 0 ? imageQuestion(turn.user) : [{ kind: 'user' as const, text: turn.user }]));
    parts.push({ kind: 'template', text: ' [/INST]' });
    if (turn.assistant !== undefined) parts.push({ kind: 'template', text: ` ${turn.assistant} ${eos}` });
  });
  return mergeTemplateParts(parts);
}

function mergeTemplateParts(parts: PromptPart[]): PromptPart[] {
  const merged: PromptPart[] = [];
  for (const part of parts) {
    const last = merged[merged.length - 1];
    if (part.kind === 'template' && last?.kind === 'template') last.text += part.text;
    else merged.push(part.kind === 'image' ? part : { ...part });
  }
  return merged;
}

/** The prompt as one string, `<image>` where the image goes (for logs and tests). */
export function promptText(manifest: PackManifest, parts: readonly PromptPart[]): string {
  return parts.map((p) => (p.kind === 'image' ? manifest.tokens.image : p.text)).join('');
}

/** What counting a prompt needs of the tokenizer (LisaTokenizer has it). */
interface PromptEncoder {
  encodePrompt(parts: readonly PromptPart[]): number[];
  positions(ids: readonly number[]): number;
}

/** Decoder positions (image rows included) the prompt for these turns takes. */
export function promptPositions(tokenizer: PromptEncoder, manifest: PackManifest, turns: readonly ChatTurn[]): number {
  return tokenizer.positions(tokenizer.encodePrompt(buildPrompt(manifest, turns)));
}
