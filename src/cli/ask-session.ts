import { userInfo } from 'node:os';
import type { Config } from '../config/index.js';
import { cliKey } from '../conversation/index.js';
import { createLogger } from '../logger.js';
import type { OverlayFormat } from '../render/formats.js';
import { createRuntime } from '../runtime.js';
import type { AskAnswer } from './ask-answer.js';
import { readImage } from './ask-input.js';
import { ensureModelPack } from './default-pack.js';
import { noteProvider } from './options.js';

export interface SessionTurn {
  session: string;
  question: string;
  /** Optional: the conversation keeps its image. */
  image?: string;
  /** The provider asked for by name, if any (the config's model.providers already start with it). */
  provider?: string;
}

/** `ask --session NAME`: one turn through the assistant, so the conversation is stored like any chat's. */
export async function askInSession(turn: SessionTurn, config: Config, format: OverlayFormat | undefined): Promise<AskAnswer> {
  const image = turn.image ? await readImage(turn.image) : undefined;
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'warn' });
  await ensureModelPack(config, logger);
  const runtime = await createRuntime(config, logger);
  noteProvider(turn.provider, runtime.engine.provider);
  try {
    const reply = await runtime.assistant.handle(
      {
        surface: 'cli',
        conversationKey: cliKey(turn.session),
        user: { id: userInfo().username },
        text: turn.question,
        images: image ? [{ kind: 'bytes', data: image }] : [],
        noImageHint: 'Pass one with --image FILE.',
      },
      { overlay: { format } },
    );
    return {
      text: reply.rawText,
      seg: runtime.engine.manifest.tokens.seg,
      ids: reply.ids,
      segments: reply.segments,
      timings: reply.timings,
      overlay: reply.overlay?.data,
      notice: reply.demoNotice,
      session: { name: turn.session, turn: reply.turnIndex + 1 },
    };
  } finally {
    await runtime.close();
  }
}
