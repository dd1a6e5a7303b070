/**
 * Progress on the web: the chat's recent turns, in memory, as the page polls
 * and streams them: state (queued with its position / working / done /
 * error), the reply as the page shows it (outgoing.ts), and the overlay
 * bytes. Bounded by count, age and overlay bytes; each turn belongs to the
 * browser session that asked it. Listeners (the SSE streams) hear every change.
 */
import type { ProgressEvent, Reply } from '../../src/assistant/types.js';
import type { PublicError } from './http.js';
import { type PublicReply, publicReply } from './outgoing.js';

export type TurnState = 'queued' | 'working' | 'done' | 'error';

/** What `GET /api/turns/:id` and each SSE event carry. */
export interface TurnView {
  state: TurnState;
  /** 1-based place in the queue, while queued. */
  position?: number;
  reply?: PublicReply;
  error?: PublicError;
}

export interface StoredOverlay {
  data: Buffer;
  contentType: string;
  filename: string;
}

type Listener = (view: TurnView) => void;

interface TurnRecord {
  id: string;
  sessionId: string;
  createdAt: number;
  view: TurnView;
  overlay?: StoredOverlay;
  listeners: Set<Listener>;
  controller: AbortController;
}

export interface TurnStoreOptions {
  maxTurns?: number;
  ttlMs?: number;
  maxOverlayBytes?: number;
  now?: () => number;
}

export function isFinal(state: TurnState): boolean {
  return state === 'done' || state === 'error';
}

const EXPIRED: PublicError = { code: 'expired', message: 'This answer is no longer kept on the server. Please ask again.' };

export class TurnStore {
  private readonly turns = new Map<string, TurnRecord>();
  private overlayBytes = 0;
  private readonly maxTurns: number;
  private readonly ttlMs: number;
  private readonly maxOverlayBytes: number;
  private readonly now: () => number;

  constructor(options: TurnStoreOptions = {}) {
    this.maxTurns = options.maxTurns ?? 1000;
    this.ttlMs = options.ttlMs ?? 60 * 60 * 1000;
    this.maxOverlayBytes = options.maxOverlayBytes ?? 256 * 1024 * 1024;
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.turns.size;
  }

  /** A turn the assistant has accepted (queued or started). */
  create(id: string, sessionId: string, controller: AbortController): void {
    this.turns.set(id, { id, sessionId, createdAt: this.now(), view: { state: 'queued' }, listeners: new Set(), controller });
    this.prune();
  }

  has(id: string): boolean {
    return this.turns.has(id);
  }

  /** The turn's current view, only for the session that asked it (anyone else gets undefined, like a missing turn). */
  view(id: string, sessionId: string | undefined): TurnView | undefined {
    return this.lookup(id, sessionId)?.view;
  }

  overlay(id: string, sessionId: string | undefined): StoredOverlay | undefined {
    return this.lookup(id, sessionId)?.overlay;
  }

  /** Calls `listener` on every change of the turn until it is final; returns the unsubscribe function. */
  subscribe(id: string, sessionId: string | undefined, listener: Listener): (() => void) | undefined {
    const record = this.lookup(id, sessionId);
    if (!record) return undefined;
    record.listeners.add(listener);
    return () => record.listeners.delete(listener);
  }

  progress(id: string, event: ProgressEvent): void {
    const record = this.turns.get(id);
    if (!record || isFinal(record.view.state)) return;
    if (event.type === 'queued') this.update(record, { state: 'queued', position: event.position });
    else if (event.type === 'started') this.update(record, { state: 'working' });
  }

  finish(id: string, reply: Reply): void {
    const record = this.turns.get(id);
    if (!record || isFinal(record.view.state)) return;
    if (reply.overlay) {
      record.overlay = { data: reply.overlay.data, contentType: reply.overlay.contentType, filename: reply.overlay.filename };
      this.overlayBytes += reply.overlay.data.length;
    }
    this.update(record, { state: 'done', reply: publicReply(id, reply) });
    this.prune();
  }

  fail(id: string, error: PublicError): void {
    const record = this.turns.get(id);
    if (!record || isFinal(record.view.state)) return;
    this.update(record, { state: 'error', error });
  }

  /** Cancels the session's unfinished turns (a new conversation makes them moot). */
  cancelSession(sessionId: string): void {
    for (const record of this.turns.values()) {
      if (record.sessionId === sessionId && !isFinal(record.view.state)) record.controller.abort();
    }
  }

  /** Cancels every unfinished turn (shutdown). */
  cancelAll(): void {
    for (const record of this.turns.values()) if (!isFinal(record.view.state)) record.controller.abort();
  }

  private lookup(id: string, sessionId: string | undefined): TurnRecord | undefined {
    const record = this.turns.get(id);
    if (!record || sessionId === undefined || record.sessionId !== sessionId) return undefined;
    if (this.expired(record)) {
      this.remove(record);
      return undefined;
    }
    return record;
  }

  private update(record: TurnRecord, view: TurnView): void {
    record.view = view;
    for (const listener of [...record.listeners]) listener(view);
    if (isFinal(view.state)) record.listeners.clear();
  }

  private expired(record: TurnRecord): boolean {
    // A turn still waiting for its answer is kept however long the queue takes.
    return isFinal(record.view.state) && this.now() - record.createdAt > this.ttlMs;
  }

  private remove(record: TurnRecord): void {
    this.turns.delete(record.id);
    if (record.overlay) this.overlayBytes -= record.overlay.data.length;
    // Whoever still listens to an evicted turn hears that it is gone instead of waiting forever.
    if (!isFinal(record.view.state)) this.update(record, { state: 'error', error: EXPIRED });
  }

  /** Drops expired turns, then the oldest ones while over the count or overlay-bytes bound. */
  private prune(): void {
    for (const record of this.turns.values()) if (this.expired(record)) this.remove(record);
    for (const record of this.turns.values()) {
      if (this.turns.size <= this.maxTurns && this.overlayBytes <= this.maxOverlayBytes) break;
      this.remove(record);
    }
  }
}
