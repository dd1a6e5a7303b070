import { randomUUID } from 'node:crypto';
import type { ConversationStores, StoredTurn } from '../conversation/index.js';
import { imageContext, trimHistory } from '../conversation/index.js';
import type { ChatTurn, DecodedImage } from '../engine/types.js';
import { chooseSegmentColours } from '../render/colour-choice.js';
import { UserInputError, restarting } from '../errors.js';
import type { JobQueue } from '../jobs/index.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/index.js';
import type { DecodedImages } from '../render/decoded-images.js';
import type { OverlayWorkers } from '../render/overlay-workers.js';
import { type HistoryDeps, pastImage, pastTurns } from './history.js';
import type { InferenceJob, InferenceResult } from './inference.js';
import { type LimitSettings, RateLimiter, checkAllowed, checkQuestion } from './limits.js';
import type { OverlayFormat } from '../render/formats.js';
import { markedText, overlayImage, replySegments } from './reply.js';
import { type ResolvedImage, resolveImage } from './turn-image.js';
import type { AssistantPort, HandleOptions, IncomingTurn, PastTurn, Reply, ReplyImage, ReplySegment } from './types.js';

/** What the assistant needs to know of the model without running it (workers may run it elsewhere). */
export interface ModelInfo {
  name: string;
  demo: boolean;
  segToken: string;
  /** packFingerprint() of the pack: jobs carry it, and a worker with another pack refuses them. */
  pack: string;
  /** True when these turns fit the model's context window with room to answer. */
  fits(turns: readonly ChatTurn[]): boolean;
}

export interface AssistantOptions {
  stores: ConversationStores;
  queue: JobQueue<InferenceJob, InferenceResult>;
  model: ModelInfo;
  limits: LimitSettings & { maxImageBytes: number; maxImagePixels: number; downloadTimeoutMs: number };
  overlayFormat: OverlayFormat;
  /** Where overlays are drawn: off the event loop. */
  pixels: OverlayWorkers;
  /** The images overlays are drawn on, decoded once per image for every overlay. */
  decodedImages: DecodedImages;
  logger: Logger;
  /** Where turns are counted and timed, when this process exposes metrics. */
  metrics?: Metrics;
}


/**
 * The one orchestrator: a turn from any surface in, a Reply out. Checks limits,
 * resolves the conversation and its image, queues inference, stores the turn,
 * and draws the overlay on this side (never on a GPU worker).
 */
export class Assistant implements AssistantPort {
  private readonly rate: RateLimiter;
  /** Jobs in flight by id: a platform's retry of the same request joins the running job. */
  private readonly inFlight = new Map<string, Promise<Reply>>();
  /** Per conversation, settles when its newest turn does: a follow-up needs the image and answers of the turns sent before it. */
  private readonly latest = new Map<string, Promise<unknown>>();
  private draining = false;

  constructor(private readonly options: AssistantOptions) {
    this.rate = new RateLimiter(options.limits.perUserPerMinute);
  }

  get model() {
    return { name: this.options.model.name, demo: this.options.model.demo };
  }

  handle(turn: IncomingTurn, options: HandleOptions = {}): Promise<Reply> {
    const jobId = turn.requestId ? `${turn.surface}:${turn.requestId}` : randomUUID();
    const running = this.inFlight.get(jobId);
    if (running) return running;
    if (this.draining) return Promise.reject(restarting());
    const key = turn.conversationKey;
    const before = this.latest.get(key);
    const startedAt = performance.now();
    const reply = this.run(jobId, turn, options, before).finally(() => this.inFlight.delete(jobId));
    this.inFlight.set(jobId, reply);
    // Counted here, where every turn settles once: a joined retry above is not a second turn.
    const { metrics } = this.options;
    if (metrics) {
      void reply.then(
        () => metrics.turnAnswered((performance.now() - startedAt) / 1000),
        (error: unknown) => metrics.turnFailed(error),
      );
    }
    const settled = reply.then(
      () => undefined,
      () => undefined,
    );
    this.latest.set(key, settled);
    void settled.then(() => {
      if (this.latest.get(key) === settled) this.latest.delete(key);
    });
    return reply;
  }

  /**
   * For a graceful shutdown: every new turn is told LISA is restarting, and
   * this resolves once the turns already in hand have settled (true), or
   * after `timeoutMs` with some still running (false).
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    // A turn joined by a retry while draining is in the same map: loop until it is empty.
    const settled = (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
      return true as const;
    })();
    try {
      return await Promise.race([settled, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }

  async resetConversation(conversationKey: string): Promise<void> {
    await this.options.stores.sessions.reset(conversationKey);
  }

  firstDelivery(key: string, ttlMs: number): Promise<boolean> {
    return this.options.stores.sessions.remember(key, ttlMs);
  }

  history(conversationKey: string): Promise<PastTurn[]> {
    return pastTurns(this.historyDeps(), conversationKey);
  }

  pastImage(conversationKey: string, index: number, which: 'thumbnail' | 'overlay'): Promise<ReplyImage | undefined> {
    return pastImage(this.historyDeps(), conversationKey, index, which);
  }

  private historyDeps(): HistoryDeps {
    const { stores, pixels, decodedImages, model, overlayFormat } = this.options;
    return { stores, pixels, decodedImages, segToken: model.segToken, overlayFormat };
  }

  async hasImage(conversationKey: string): Promise<boolean> {
    const session = await this.options.stores.sessions.get(conversationKey);
    return session?.imageHash !== undefined && (await this.options.stores.images.has(session.imageHash));
  }

  private async run(jobId: string, turn: IncomingTurn, options: HandleOptions, before?: Promise<unknown>): Promise<Reply> {
    const { stores, limits, model } = this.options;
    const question = checkQuestion(turn.text, limits);
    checkAllowed(turn, limits);
    this.rate.take(`${turn.surface}:${turn.user.id}`);
    if (before && turn.images.length === 0) await this.waitBehind(before, options);

    const session = await stores.sessions.get(turn.conversationKey);
    const image = await resolveImage(this.options, turn, session, options);
    const context = session?.imageHash === image.hash ? imageContext(session) : [];
    const history: ChatTurn[] = context.map((t) => ({ user: t.user, assistant: t.assistant }));
    const turns = trimHistory([...history, { user: question }], (candidate) => model.fits(candidate));
    if (!model.fits(turns)) {
      throw new UserInputError('This question is too long for the model, even in a new conversation. Please shorten it.', 'prompt_too_long');
    }

    const job = this.options.queue.submit(
      { imageHash: image.hash, turns, pack: model.pack },
      {
        jobId,
        onProgress: (event) => {
          // Once the job runs, the image is decoded for the overlay while the
          // engine works (a no-op when kept from the last turn). Queued turns
          // wait till then: each would hold a decoded image for nothing. A
          // failure here resurfaces at drawing.
          if (event.type === 'started') this.options.decodedImages.prefetch(image.hash, image.bytes);
          options.onProgress?.(event);
        },
      },
    );
    // Removed once the job settles: a listener left on a long-lived signal keeps the
    // job, and through it the turn's decoded pixels, alive for as long as the signal.
    const cancel = () => job.cancel();
    options.signal?.addEventListener('abort', cancel, { once: true });
    const result = await job.result.finally(() => options.signal?.removeEventListener('abort', cancel));

    // The colours depend on the pixels under each mask, so the image is decoded first (usually it already is: see prefetch above).
    const pixels = result.segments.length > 0 ? await this.options.decodedImages.acquire(image.hash, image.bytes) : undefined;
    try {
      const segments = replySegments(result.segments, pixels && chooseSegmentColours(pixels.image, result.segments));
      return await this.answer(jobId, turn, question, image, result, segments, pixels?.image, options);
    } finally {
      pixels?.release();
    }
  }

  private async answer(
    jobId: string,
    turn: IncomingTurn,
    question: string,
    image: ResolvedImage,
    result: InferenceResult,
    segments: ReplySegment[],
    pixels: DecodedImage | undefined,
    options: HandleOptions,
  ): Promise<Reply> {
    const { stores, model } = this.options;
    const stored: StoredTurn = {
      user: question,
      assistant: result.text,
      segments: segments.map((s) => ({ rle: s.rle, bbox: s.bbox, area: s.area, score: s.score, colour: s.colour.hex })),
      imageHash: image.hash,
      at: Date.now(),
      jobId,
    };
    // Storing the turn and drawing the overlay are independent: both at once.
    const [updated, overlay] = await Promise.all([stores.sessions.appendTurn(turn.conversationKey, stored), this.overlay(pixels, segments, options)]);
    this.options.logger.info(
      { jobId, conversation: turn.conversationKey, segments: segments.length, ms: Math.round(result.timings.total), cache: result.imageEmbeddings },
      'turn answered',
    );
    return {
      jobId,
      conversationKey: turn.conversationKey,
      text: markedText(result.text, model.segToken, segments),
      rawText: result.text,
      ids: result.ids,
      overlay,
      segments,
      demoNotice: model.demo ? `Demo model "${model.name}": this is not LISA, only a tiny test model.` : undefined,
      // Where this request's turn is: the last one, unless another serve process stored it first.
      turnIndex: updated.turns.findLastIndex((t) => t.jobId === jobId),
      timings: result.timings,
    };
  }

  /**
   * A follow-up sent while earlier turns of its conversation are unanswered
   * (a second tab, a script) is about their image and comes after their
   * answers: it waits, queued, instead of finding no image yet.
   */
  private async waitBehind(before: Promise<unknown>, options: HandleOptions): Promise<void> {
    const { queue } = this.options;
    options.onProgress?.({ type: 'queued', position: queue.size + queue.running + 1 });
    const { signal } = options;
    if (signal?.aborted) throw new UserInputError('The request was cancelled.', 'cancelled');
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(new UserInputError('The request was cancelled.', 'cancelled'));
      signal?.addEventListener('abort', onAbort, { once: true });
      void before.then(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  private async overlay(pixels: DecodedImage | undefined, segments: ReplySegment[], options: HandleOptions): Promise<Reply['overlay']> {
    if (!pixels || segments.length === 0) return undefined;
    return overlayImage(this.options.pixels, pixels, segments, {
      format: options.overlay?.format ?? this.options.overlayFormat,
      maxBytes: options.overlay?.maxBytes,
    });
  }
}
