import { userInfo } from 'node:os';
import type { Config } from '../config/index.js';
import { cliKey } from '../conversation/index.js';
import { decodeRle, maskUnion } from '../engine/mask.js';
import { createLogger } from '../logger.js';
import { renderMaskPng } from '../render/overlay.js';
import { createRuntime } from '../runtime.js';
import type { OverlayFileFormat } from './ask-input.js';
import { type AskOptions, noteProvider, readImage, textLines } from './ask.js';
import { writeFileAtomic } from './output.js';

/** `ask --session NAME`: one turn through the assistant, so the conversation is stored like any chat's. */
export async function askInSession(question: string, options: AskOptions, config: Config, format: OverlayFileFormat | undefined): Promise<void> {
  if (options.model) config.model.path = options.model;
  if (options.provider) config.model.providers = [options.provider, 'cpu'];
  const image = options.image ? await readImage(options.image) : undefined;
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  const runtime = await createRuntime(config, logger);
  noteProvider(options.provider, runtime.engine.provider);
  try {
    const reply = await runtime.assistant.handle(
      {
        surface: 'cli',
        conversationKey: cliKey(options.session!),
        user: { id: userInfo().username },
        text: question,
        images: image ? [{ kind: 'bytes', data: image }] : [],
      },
      { overlay: { format } },
    );
    if (options.out && reply.overlay) await writeFileAtomic(options.out, reply.overlay.data);
    if (options.maskOut) {
      const masks = reply.segments.map((s) => decodeRle(s.rle));
      const [height, width] = reply.segments[0]?.rle.size ?? [0, 0];
      if (masks.length > 0) await writeFileAtomic(options.maskOut, await renderMaskPng(maskUnion(masks, width, height)));
    }
    if (options.json) {
      const segments = reply.segments.map((s) => ({ area: s.area, bbox: s.bbox, score: s.score, rle: s.rle }));
      process.stdout.write(`${JSON.stringify({ text: reply.rawText, ids: reply.ids, segments, timings: reply.timings, turn: reply.turnIndex + 1 })}\n`);
    } else {
      const lines = [reply.demoNotice, ...textLines(reply.rawText, runtime.engine.manifest.tokens.seg, reply.segments), `(turn ${reply.turnIndex + 1} of session "${options.session}")`];
      process.stdout.write(`${lines.filter(Boolean).join('\n')}\n`);
    }
  } finally {
    await runtime.close();
  }
}
