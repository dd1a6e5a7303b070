/**
 * The JSON API behind the page: turns (create, poll, stream, overlay), the
 * conversation (state, reset) and the model. Translation only: everything a
 * turn means is the assistant's business.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SurfaceContext } from '../../src/assistant/surface.js';
import type { IncomingTurn } from '../../src/assistant/types.js';
import { webKey } from '../../src/conversation/keys.js';
import { HttpError, ensureSession, existingSession, publicError, readJsonBody, requireMediaType, sendJson } from './http.js';
import { parseTurnUpload, type TurnUpload } from './multipart.js';
import { type TurnStore, type TurnView, isFinal } from './turns.js';

const MAX_JSON_BYTES = 16 * 1024;
const HEARTBEAT_MS = 15_000;

function notFound(): HttpError {
  return new HttpError(404, 'not_found', 'No such turn: it belongs to another browser session, or it is no longer kept.');
}

export class WebApi {
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
    const hasImage = await this.ctx.assistant.hasImage(webKey(sessionId));
    const { maxImageBytes, maxQuestionChars } = this.ctx.config.limits;
    sendJson(res, 200, { hasImage, limits: { maxImageBytes, maxQuestionChars } });
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
    sendJson(res, 202, { turnId }, { Location: `/api/turns/${turnId}` });
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
      const turn: IncomingTurn = {
        surface: 'web',
        conversationKey: webKey(sessionId),
        user: { id: sessionId },
        text: upload.question,
        images: upload.image ? [{ kind: 'bytes', data: upload.image.data, name: upload.image.name }] : [],
        requestId: turnId,
      };
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
