/**
 * One turn from any Discord entry point (mention, /segment, context menu): the
 * assistant is called, progress goes to the responder, the answer is posted
 * once per job, and every failure becomes a short reply the user can read.
 */
import type { AssistantPort, IncomingTurn, ProgressEvent, Reply } from '../../src/assistant/types.js';
import { isUserInputError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import type { ConversationResolver } from './conversation.js';
import { GENERIC_ERROR, RESTARTING } from './outgoing.js';
import { errorFields } from './log.js';

/** How long a job's answer is remembered as posted (the job id is the platform's request id). */
export const REPLY_DEDUPE_MS = 24 * 60 * 60 * 1000;

/** Where a turn's progress and answer go: a reply to a message, or an interaction's response. */
export interface Responder {
  /** Bytes the overlay may take (the upload limit of this place). */
  readonly uploadLimit: number;
  progress(event: ProgressEvent): void;
  /** Posts the answer; returns the ids of the messages that carry it. */
  deliver(reply: Reply): Promise<string[]>;
  /** Posts a short text in place of an answer. */
  fail(text: string): Promise<void>;
  /** Stops typing and removes any status line left; never throws. */
  close(): Promise<void>;
}

export interface TurnRunner {
  run(build: () => Promise<IncomingTurn>, responder: Responder): Promise<void>;
  /** Cancels the turns in flight; their users are told to ask again (answers already back are still posted). */
  abortAll(): void;
}

export function createTurnRunner(deps: {
  assistant: AssistantPort;
  conversations: ConversationResolver;
  logger: Logger;
}): TurnRunner {
  const { assistant, conversations, logger } = deps;
  const inFlight = new Set<AbortController>();

  async function run(build: () => Promise<IncomingTurn>, responder: Responder): Promise<void> {
    const controller = new AbortController();
    inFlight.add(controller);
    let requestId: string | undefined;
    try {
      const turn = await build();
      requestId = turn.requestId;
      const reply = await assistant.handle(turn, {
        onProgress: (event) => responder.progress(event),
        overlay: { maxBytes: responder.uploadLimit },
        signal: controller.signal,
      });
      // At-least-once delivery (a resumed gateway, a second process): post once per job.
      if (!(await assistant.firstDelivery(`discord:reply:${reply.jobId}`, REPLY_DEDUPE_MS))) {
        logger.info({ jobId: reply.jobId }, 'discord: answer already posted; not posting it again');
        return;
      }
      const ids = await responder.deliver(reply);
      conversations.remember(ids, reply.conversationKey);
    } catch (error) {
      let text = GENERIC_ERROR;
      if (controller.signal.aborted) text = RESTARTING;
      else if (isUserInputError(error)) text = error.message;
      else logger.error({ ...errorFields(error), requestId }, 'discord: turn failed');
      await responder.fail(text).catch((failure: unknown) => {
        logger.error({ ...errorFields(failure), requestId }, 'discord: could not post the error reply');
      });
    } finally {
      inFlight.delete(controller);
      await responder.close();
    }
  }

  return {
    run,
    abortAll() {
      for (const controller of inFlight) controller.abort();
    },
  };
}
