import { type KvBackend, type StoreOptions, idleMs, openKvBackend } from './backend.js';
import { type ImageStore, createImageStore } from './images.js';
import { type Session, type StoredTurn, capTurns } from './session.js';

/** Conversations by key (see keys.ts). A port: SQLite by default, Redis to scale out. */
export interface SessionStore {
  get(key: string): Promise<Session | undefined>;
  /**
   * Appends a turn and makes its image the session's current one; creates the
   * session if needed and refreshes its idle expiry. Appends to one key are
   * serialised (in this process, and across processes on Redis), and each is
   * one write of the whole session, so a crash never leaves half a session.
   * A turn whose jobId the session already holds is not stored again.
   */
  appendTurn(key: string, turn: StoredTurn): Promise<Session>;
  /** Forgets the conversation: the next turn starts a new one. */
  reset(key: string): Promise<void>;
  close(): Promise<void>;
}

/** At-most-once markers, e.g. Slack event ids (Slack retries deliveries). */
export interface DedupeStore {
  /** True only the first time `key` is seen within `ttlMs` (atomic across processes on Redis). */
  remember(key: string, ttlMs: number): Promise<boolean>;
}

/**
 * The session JSON is rewritten on every turn; beyond this many turns the
 * oldest are dropped (the prompt could not hold them anyway).
 */
export const MAX_STORED_TURNS = 100;

const SESSIONS = 'sessions:';
const DEDUPE = 'dedupe:';

/**
 * Opens a session store on `store.url` (or on an open backend, which the store
 * then does not close). Relative sqlite:// paths are relative to process.cwd().
 */
export async function createSessionStore(
  target: string | KvBackend,
  options: StoreOptions,
): Promise<SessionStore & DedupeStore> {
  const owned = typeof target === 'string';
  const backend = owned ? await openKvBackend(target) : target;
  const ttlMs = idleMs(options);

  return {
    async get(key) {
      return backend.get<Session>(SESSIONS + key);
    },

    appendTurn(key, turn) {
      return backend.withLock(SESSIONS + key, async () => {
        const now = Date.now();
        const previous = await backend.get<Session>(SESSIONS + key);
        if (turn.jobId !== undefined && previous?.turns.some((t) => t.jobId === turn.jobId)) return previous;
        const turns = capTurns([...(previous?.turns ?? []), turn], turn.imageHash, MAX_STORED_TURNS);
        const session: Session = {
          key,
          imageHash: turn.imageHash,
          turns,
          createdAt: previous?.createdAt ?? now,
          updatedAt: now,
        };
        await backend.set(SESSIONS + key, session, ttlMs);
        return session;
      });
    },

    async reset(key) {
      await backend.withLock(SESSIONS + key, () => backend.delete(SESSIONS + key));
    },

    remember(key, ttl) {
      return backend.claim(DEDUPE + key, ttl);
    },

    async close() {
      if (owned) await backend.close();
    },
  };
}

export interface ConversationStores {
  sessions: SessionStore & DedupeStore;
  images: ImageStore;
  /** Closes the shared connection (the stores' own close() leave it open). */
  close(): Promise<void>;
}

/** Sessions, dedupe keys and images on one connection to `store.url`. */
export async function openConversationStores(
  url: string,
  options: StoreOptions & { connectTimeoutMs?: number },
): Promise<ConversationStores> {
  const backend = await openKvBackend(url, 'store.url', { connectTimeoutMs: options.connectTimeoutMs });
  return {
    sessions: await createSessionStore(backend, options),
    images: await createImageStore(backend, options),
    close: () => backend.close(),
  };
}
