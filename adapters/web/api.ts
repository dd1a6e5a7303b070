/**
 * The JSON API behind the page: turns (create, poll, stream, overlay), the
 * conversation (state, reset) and the model. Translation only: everything a
 * turn means is the assistant's business.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SurfaceContext } from '../../src/assistant/surface.js';
import { ensureSession, existingSession, webKey } from './conversation.js';
import { HttpError, publicError, readJsonBody, requireMediaType, sendJson } from './http.js';
import { type TurnUpload, parseTurnUpload, webTurn } from './incoming.js';
import { pastUrl, publicPastTurn } from './outgoing.js';
import { type TurnStore, type TurnView, isFinal } from './progress.js';

const MAX_JSON_BYTES = 16 * 1024;
const HEARTBEAT_MS = 15_000;

function notFound(): HttpError {
  return new HttpError(
    404,
    'not_found',
    'No such turn here: it belongs to another browser session, is no longer kept, or was lost when the server restarted.',
  );
}

export class WebApi {
  /** Changes with every start: a page that finds a turn gone under another instance knows the server restarted. */
  readonly instance = randomUUID();

  constructor(
    private readonly ctx: SurfaceContext,
    private readonly turns: TurnStore,
  ) {}

  model(res: ServerResponse): void {
    const { name, demo } = this.ctx.assistant.model;
    sendJson(res, 200, { name, demo });
  }

  async conversation(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sessionId = ensureSession(req, res);
    const key = webKey(sessionId);
    const { assistant } = this.ctx;
    const [hasImage, past] = await Promise.all([assistant.hasImage(key), assistant.history?.(key) ?? []]);
    const { maxImageBytes, maxQuestionChars } = this.ctx.config.limits;
    const last = past.at(-1);
    sendJson(res, 200, {
      instance: this.instance,
      hasImage,
      // The image a follow-up without one is about.
      currentImageUrl: hasImage && last ? pastUrl(last, 'thumbnail') : undefined,
      turns: past.map(publicPastTurn),
      limits: { maxImageBytes, maxQuestionChars },
    });
  }

  /** `GET /api/conversation/turns/:index/(thumbnail|overlay)`: a stored turn's image, small, or with its masks. */
  async pastImage(req: IncomingMessage, res: ServerResponse, index: number, which: 'thumbnail' | 'overlay'): Promise<void> {
    const sessionId = existingSession(req);
    const image = sessionId === undefined ? undefined : await this.ctx.assistant.pastImage?.(webKey(sessionId), index, which);
    if (!image) throw new HttpError(404, 'not_found', 'No such image: the conversation or its image is no longer kept.');
    res.writeHead(200, {
      'Content-Type': image.contentType,
      'Content-Length': String(image.data.length),
      'Cache-Control': 'private, max-age=3600',
    });
    res.end(image.data);
  }

  async reset(req: IncomingMessage, res: ServerResponse): Promise<void> {
    requireMediaType(req, 'application/json');
    await readJsonBody(req, MAX_JSON_BYTES);
    const sessionId = ensureSession(req, res);
    this.turns.cancelSession(sessionId);
    await this.ctx.assistant.resetConversation(webKey(sessionId));
    sendJson(res, 200, { ok: true });
  }

  /** `POST /api/turns`: 202 once the assistant has queued the turn; refusals before that are the response itself. */
  async createTurn(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sessionId = ensureSession(req, res);
    const upload = await parseTurnUpload(req, this.ctx.config.limits);
    const turnId = randomUUID();
    await this.submit(turnId, sessionId, upload);
    sendJson(res, 202, { turnId, instance: this.instance }, { Location: `/api/turns/${turnId}` });
  }

  getTurn(req: IncomingMessage, res: ServerResponse, turnId: string): void {
    const view = this.turns.view(turnId, existingSession(req));
    if (!view) throw notFound();
    sendJson(res, 200, view);
  }

  overlay(req: IncomingMessage, res: ServerResponse, turnId: string): void {
    const overlay = this.turns.overlay(turnId, existingSession(req));
    if (!overlay) throw new HttpError(404, 'not_found', 'No overlay for this turn.');
    res.writeHead(200, {
      'Content-Type': overlay.contentType,
      'Content-Length': String(overlay.data.length),
      'Content-Disposition': `inline; filename="${overlay.filename.replace(/[^\w.-]/g, '_')}"`,
      'Cache-Control': 'private, max-age=3600, immutable',
    });
    res.end(overlay.data);
  }

  /** `GET /api/turns/:id/events`: the current state at once, then each change, ending with the final one. */
  events(req: IncomingMessage, res: ServerResponse, turnId: string): void {
    const sessionId = existingSession(req);
    const view = this.turns.view(turnId, sessionId);
    if (!view) throw notFound();
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    const send = (v: TurnView) => res.write(`event: state\ndata: ${JSON.stringify(v)}\n\n`);
    send(view);
    if (isFinal(view.state)) {
      res.end();
      return;
    }
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const cleanup = () => {
      clearInterval(heartbeat);
      unsubscribe?.();
    };
    const unsubscribe = this.turns.subscribe(turnId, sessionId, (v) => {
      send(v);
      if (isFinal(v.state)) {
        cleanup();
        res.end();
      }
    });
    res.on('close', cleanup);
  }

  /**
   * Hands the turn to the assistant. Resolves when the assistant reports the
   * turn queued or started (or answers outright): only then does the turn
   * exist here. A refusal before that (bad image, empty question, rate limit)
   * rejects, so the upload is answered with the error and nothing is kept.
   */
  private submit(turnId: string, sessionId: string, upload: TurnUpload): Promise<void> {
    const { assistant, logger } = this.ctx;
    const controller = new AbortController();
    return new Promise<void>((resolve, reject) => {
      let accepted = false;
      const accept = () => {
        if (accepted) return;
        accepted = true;
        this.turns.create(turnId, sessionId, controller);
        resolve();
      };
      const turn = webTurn(sessionId, turnId, upload);
      Promise.resolve()
        .then(() =>
          assistant.handle(turn, {
            signal: controller.signal,
            onProgress: (event) => {
              if (event.type !== 'downloading') accept();
              this.turns.progress(turnId, event);
            },
          }),
        )
        .then(
          (reply) => {
            accept();
            this.turns.finish(turnId, reply);
          },
          (error: unknown) => {
            const { status, code, message } = publicError(error);
            if (code === 'internal') logger.error({ err: error, turnId }, 'web turn failed');
            else logger.info({ code, status, turnId }, 'web turn refused');
            if (!accepted) reject(error);
            else this.turns.fail(turnId, { code, message });
          },
        );
    });
  }
}
