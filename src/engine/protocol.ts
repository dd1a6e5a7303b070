/**
 * The messages between an EngineThread (thread.ts, the calling side) and its
 * host (thread-host.ts, on the engine thread), and between the engine and its
 * SAM encoder thread (sam-thread.ts, sam-thread-host.ts). Plain data:
 * structured clone carries them, and errors travel as WireError (errors.ts).
 */
import type { WireError } from '../errors.js';
import type { EngineOptions } from './options.js';
import type { PackManifest } from './manifest.js';
import type { PackOptions } from './pack.js';
import type { ProviderName } from './providers.js';
import type { ChatRequest, ChatResult, EngineStats } from './types.js';

/** What the engine thread is started with (workerData). */
export interface ThreadInit {
  packDir: string;
  /** The image source stays on the calling side: the thread asks for bytes by hash (`image` messages). */
  options: Omit<EngineOptions, 'logger' | 'images'>;
  logLevel: string;
}

/** Calling side -> engine thread. */
export type ToEngine =
  | { type: 'chat'; id: number; request: Omit<ChatRequest, 'signal'> }
  | { type: 'abort'; id: number }
  /** The answer to an `image` request: the file's bytes (in shared memory), none when unknown, or why reading it failed. */
  | { type: 'image'; id: number; bytes?: Uint8Array; error?: WireError }
  | { type: 'close' };

/** Engine thread -> calling side. */
export type FromEngine =
  | { type: 'ready'; manifest: PackManifest; provider: ProviderName; stats: EngineStats }
  | { type: 'failed'; error: WireError }
  /** The engine needs an image file's bytes (its embeddings are not cached). */
  | { type: 'image'; id: number; hash: string }
  | { type: 'result'; id: number; result: ChatResult; stats: EngineStats }
  | { type: 'error'; id: number; error: WireError; stats: EngineStats };

/** What the SAM image encoder's thread is started with (sam-thread.ts). */
export interface SamThreadInit {
  packDir: string;
  options: Omit<PackOptions, 'logger' | 'graphs'>;
  logLevel: string;
}

/** Engine -> SAM thread: SAM's pixel values (moved, and moved back with the answer, for reuse). */
export type ToSam = { type: 'encode'; id: number; pixels: Float32Array } | { type: 'close' };

/** SAM thread -> engine; times are epoch milliseconds (each thread's performance.now() has its own origin). */
export type FromSam =
  | { type: 'ready' }
  | { type: 'failed'; error: WireError }
  | { type: 'encoded'; id: number; embeddings: Float32Array; pixels: Float32Array; startEpochMs: number; endEpochMs: number }
  | { type: 'error'; id: number; error: WireError; pixels: Float32Array };
