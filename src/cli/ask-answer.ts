/**
 * How `lisa-bot ask` hands over an answer, whichever way it was made (one
 * shot on the engine, or a turn of a stored session): the overlay and mask
 * files, then the text with a line per mask, or JSON.
 */
import { writeFileAtomic } from '../atomic-file.js';
import { decodeRle, maskUnion } from '../engine/mask.js';
import type { Segment, StageTimings } from '../engine/types.js';
import { replaceSegTokens } from '../render/markers.js';
import { renderMaskPng } from '../render/overlay.js';

export interface AskAnswer {
  /** The answer as the model wrote it (`[SEG]` kept). */
  text: string;
  /** The pack's [SEG] token, which the text shows as "[mask N]". */
  seg: string;
  ids: number[];
  segments: readonly Segment[];
  timings: StageTimings;
  /** The image's size, for a mask file when no mask says it. */
  image?: { width: number; height: number };
  /** The overlay in the format `--out` asked for; absent when nothing is drawn. */
  overlay?: Uint8Array;
  /** A demo pack's banner. */
  notice?: string;
  session?: { name: string; turn: number };
}

export interface AnswerOutputs {
  out?: string;
  maskOut?: string;
  json?: boolean;
}

export async function deliverAnswer(answer: AskAnswer, outputs: AnswerOutputs): Promise<void> {
  if (outputs.out && answer.overlay) await writeFileAtomic(outputs.out, answer.overlay);
  if (outputs.maskOut) {
    const [height, width] = answer.segments[0]?.rle.size ?? [answer.image?.height, answer.image?.width];
    if (width !== undefined && height !== undefined) {
      const union = maskUnion(answer.segments.map((s) => decodeRle(s.rle)), width, height);
      await writeFileAtomic(outputs.maskOut, await renderMaskPng(union));
    }
  }
  process.stdout.write(outputs.json ? `${JSON.stringify(jsonAnswer(answer))}\n` : `${textAnswer(answer).join('\n')}\n`);
}

function jsonAnswer(answer: AskAnswer) {
  return {
    text: answer.text,
    ids: answer.ids,
    segments: answer.segments.map((s) => ({ area: s.area, bbox: s.bbox, score: s.score, rle: s.rle })),
    timings: answer.timings,
    ...(answer.session ? { turn: answer.session.turn } : {}),
  };
}

/** The banner if any, the answer with its [SEG] tokens as "[mask N]", a line per mask, and the session's turn. */
function textAnswer(answer: AskAnswer): string[] {
  const lines = answer.notice ? [answer.notice] : [];
  lines.push(replaceSegTokens(answer.text, answer.seg, (i) => `[mask ${i + 1}]`));
  if (answer.segments.length === 0) lines.push('(no mask: the answer points at nothing in the image)');
  answer.segments.forEach((s, i) => {
    const total = s.rle.size[0] * s.rle.size[1];
    lines.push(
      s.area === 0
        ? `[mask ${i + 1}] empty: nothing in the image matched`
        : `[mask ${i + 1}] ${((100 * s.area) / total).toFixed(1)}% of the image, box x=${s.bbox[0]} y=${s.bbox[1]} w=${s.bbox[2]} h=${s.bbox[3]}, score ${s.score.toFixed(2)}`,
    );
  });
  if (answer.session) lines.push(`(turn ${answer.session.turn} of session "${answer.session.name}")`);
  return lines;
}
