import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { UserInputError, type UserInputErrorCode } from '../errors.js';
import type { EngineOptions, EngineStats } from './engine.js';
import { type PackManifest, loadManifest } from './manifest.js';
import type { ProviderName } from './pack.js';
import { buildPrompt } from './prompt.js';
import type { HostRequest, SerialisedError, ThreadInit } from './thread-host.js';
import { IMAGE_SLOT, LisaTokenizer } from './tokenizer.js';
import type { ChatRequest, ChatResult, ChatTurn } from './types.js';
import { scratchSharedBuffer, withSharedBytes } from '../workers/scratch.js';

/** What the rest of lisa-bot needs of an engine, wherever it runs. */
export interface ChatEngine {
  readonly manifest: PackManifest;
  readonly provider: ProviderName;
  /**
   * Settles once nothing reads `request.decoded` any more (its memory may then
   * hold another image), even when the chat fails.
   */
  chat(request: ChatRequest): Promise<ChatResult>;
  /** True when a chat about this image would not read its pixels (its embeddings are cached), as of the last finished chat. */
  hasImageEmbeddings(hash: string): boolean;
  /** Prompt length in decoder positions (image rows included). */
  countPromptTokens(turns: readonly ChatTurn[]): number;
  /** As of the last finished chat. */
  stats(): EngineStats;
  close(): Promise<void>;
}

type HostMessage =
  | { type: 'ready'; manifest: PackManifest; provider: ProviderName; stats: EngineStats }
  | { type: 'failed'; error: SerialisedError }
  | { type: 'result'; id: number; result: ChatResult; stats: EngineStats; cachedImages: string[] }
  | { type: 'error'; id: number; error: SerialisedError; stats: EngineStats; cachedImages: string[] };

function revive(error: SerialisedError): Error {
  if (error.name === 'UserInputError') return new UserInputError(error.message, error.code as UserInputErrorCode);
  const revived = new Error(error.message);
  revived.name = error.name;
  if (error.stack) revived.stack = error.stack;
  return revived;
}

/**
 * The engine on a thread of its own (see thread-host.ts): the same API as
 * Engine, with the event loop of this thread free while graphs run. Prompt
 * lengths are counted here, with the pack's tokenizer, without a round trip.
 */
/** Starts an engine thread and waits until its pack is loaded (or refused). */
async function spawn(init: ThreadInit): Promise<{ worker: Worker; ready: Extract<HostMessage, { type: 'ready' }> }> {
  // A worker's default 4 MiB stack is half the main thread's: onnxruntime's first session
  // scans the command line on it and overflows at half the length (command-line.ts).
  const worker = new Worker(new URL('./thread-entry.js', import.meta.url), { workerData: init, resourceLimits: { stackSizeMb: 16 } });
  try {
    const ready = await new Promise<Extract<HostMessage, { type: 'ready' }>>((resolve, reject) => {
      worker.once('message', (message: HostMessage) => {
        if (message.type === 'ready') resolve(message);
        else if (message.type === 'failed') reject(revive(message.error));
        else reject(new Error(`unexpected first message from the engine thread: ${message.type}`));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the engine thread exited while loading (code ${code})`)));
    });
    return { worker, ready };
  } catch (error) {
    await worker.terminate();
    throw error;
  }
}

/**
 * The engine on a thread of its own (see thread-host.ts): the same API as
 * Engine, with the event loop of this thread free while graphs run. Prompt
 * lengths are counted here, with the pack's tokenizer, without a round trip.
 * If the thread dies (an uncaught error, running out of memory), the turns in
 * flight fail with a clear error and the next turn starts a fresh thread.
 */
export class EngineThread implements ChatEngine {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: ChatResult) => void; reject: (e: Error) => void }>();
  private latestStats: EngineStats;
  private cachedImages = new Set<string>();
  private worker: Worker;
  /** Set while the current thread is dead; the next chat replaces it. */
  private restarting: Promise<void> | undefined;
  private dead = false;
  private closing = false;

  private constructor(
    worker: Worker,
    readonly manifest: PackManifest,
    readonly provider: ProviderName,
    private readonly tokenizer: LisaTokenizer,
    stats: EngineStats,
    private readonly init: ThreadInit,
    private readonly logger: Logger | undefined,
  ) {
    this.latestStats = stats;
    this.worker = worker;
    this.attach(worker);
  }

  static async open(packDir: string, options: EngineOptions = {}): Promise<EngineThread> {
    const { logger, ...rest } = options;
    // Read here too: a missing or broken pack fails fast, and prompts are counted on this side.
    const manifest = await loadManifest(packDir);
    const tokenizer = await LisaTokenizer.load(packDir, manifest);
    const init: ThreadInit = { packDir, options: rest, logLevel: logger?.level ?? 'info' };
    const { worker, ready } = await spawn(init);
    logger?.info({ pack: ready.manifest.name, provider: ready.provider, dtype: ready.manifest.dtype }, 'model pack loaded on the engine thread');
    return new EngineThread(worker, ready.manifest, ready.provider, tokenizer, ready.stats, init, logger);
  }

  private attach(worker: Worker): void {
    worker.on('message', (message: HostMessage) => this.receive(message));
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(worker, new Error(`the engine thread exited (code ${code})`));
    });
  }

  countPromptTokens(turns: readonly ChatTurn[]): number {
    const ids = this.tokenizer.encodePrompt(buildPrompt(this.manifest, turns));
    return ids.reduce((n, id) => n + (id === IMAGE_SLOT ? this.manifest.imageTokens : 1), 0);
  }

  stats(): EngineStats {
    return this.latestStats;
  }

  hasImageEmbeddings(hash: string): boolean {
    return this.cachedImages.has(hash);
  }

  async chat(request: ChatRequest): Promise<ChatResult> {
    if (this.closing) throw new Error('The model engine is shutting down.');
    if (this.dead) {
      this.restarting ??= this.restart().finally(() => (this.restarting = undefined));
      await this.restarting;
    }
    const id = this.nextId++;
    const { signal, decoded, image, ...rest } = request;
    // Pixels in shared memory cross without a copy; any others are cheaper decoded again over there than cloned.
    const shared = decoded?.data.buffer instanceof SharedArrayBuffer ? decoded : undefined;
    const worker = this.worker;
    // The file too (read over there only to decode it when needed): the chat settles
    // only once the thread has answered, so its memory is not reused before.
    return withSharedBytes(this.files, image, (file) => {
      // The listener goes when the chat settles: its closure sees `shared`, so one left
      // on a signal that outlives the chat kept the turn's pixels alive with it.
      const abort = () => worker.postMessage({ type: 'abort', id } satisfies HostRequest);
      return new Promise<ChatResult>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        worker.postMessage({ type: 'chat', id, request: { ...rest, image: file, decoded: shared } } satisfies HostRequest);
        signal?.addEventListener('abort', abort, { once: true });
      }).finally(() => signal?.removeEventListener('abort', abort));
    });
  }

  /** Image files on their way to the engine thread (see withSharedBytes). */
  private readonly files = scratchSharedBuffer();

  private async restart(): Promise<void> {
    this.logger?.warn('restarting the engine thread');
    const { worker, ready } = await spawn(this.init);
    this.worker = worker;
    this.latestStats = ready.stats;
    this.cachedImages = new Set();
    this.attach(worker);
    this.dead = false;
  }

  private receive(message: HostMessage): void {
    if (message.type !== 'result' && message.type !== 'error') return;
    this.latestStats = message.stats;
    this.cachedImages = new Set(message.cachedImages);
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.type === 'error') {
      waiter.reject(revive(message.error));
      return;
    }
    waiter.resolve(message.result);
  }

  private fail(worker: Worker, error: Error): void {
    if (worker !== this.worker || this.dead) return;
    this.dead = true;
    this.cachedImages = new Set();
    const failure = new Error(`The model engine stopped (${error.message}); the next question starts it again.`);
    this.logger?.error({ err: error }, 'engine thread failed');
    for (const waiter of this.pending.values()) waiter.reject(failure);
    this.pending.clear();
    void worker.terminate();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.restarting?.catch(() => undefined);
    const worker = this.worker;
    if (this.dead) {
      await worker.terminate();
      return;
    }
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' } satisfies HostRequest);
    const timeout = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timeout);
  }
}
