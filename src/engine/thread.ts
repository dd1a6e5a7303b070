import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { errorFromWire, errorToWire } from '../errors.js';
import { type PackManifest, loadManifest } from './manifest.js';
import type { ProviderName } from './providers.js';
import { promptPositions } from './prompt.js';
import type { EngineOptions } from './options.js';
import type { FromEngine, ThreadInit, ToEngine } from './protocol.js';
import { LisaTokenizer } from './tokenizer.js';
import type { ChatEngine, ChatRequest, ChatResult, ChatTurn, EngineStats, ImageSource } from './types.js';

type Ready = Extract<FromEngine, { type: 'ready' }>;

/** Starts an engine thread and waits until its pack is loaded (or refused). */
async function spawn(init: ThreadInit): Promise<{ worker: Worker; ready: Ready }> {
  // A worker's default 4 MiB stack is half the main thread's: onnxruntime's first session
  // scans the command line on it and overflows at half the length (command-line.ts).
  const worker = new Worker(new URL('./thread-entry.js', import.meta.url), { workerData: init, resourceLimits: { stackSizeMb: 16 } });
  try {
    const ready = await new Promise<Ready>((resolve, reject) => {
      worker.once('message', (message: FromEngine) => {
        if (message.type === 'ready') resolve(message);
        else if (message.type === 'failed') reject(errorFromWire(message.error));
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
    private readonly images: ImageSource,
    private readonly logger: Logger | undefined,
  ) {
    this.latestStats = stats;
    this.worker = worker;
    this.attach(worker);
  }

  static async open(packDir: string, options: EngineOptions): Promise<EngineThread> {
    const { logger, images, ...rest } = options;
    // Read here too: a missing or broken pack fails fast, and prompts are counted on this side.
    const manifest = await loadManifest(packDir);
    const tokenizer = await LisaTokenizer.load(packDir, manifest);
    const init: ThreadInit = { packDir, options: rest, logLevel: logger?.level ?? 'info' };
    const { worker, ready } = await spawn(init);
    logger?.info({ pack: ready.manifest.name, provider: ready.provider, dtype: ready.manifest.dtype }, 'model pack loaded on the engine thread');
    return new EngineThread(worker, ready.manifest, ready.provider, tokenizer, ready.stats, init, images, logger);
  }

  private attach(worker: Worker): void {
    worker.on('message', (message: FromEngine) => this.receive(worker, message));
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(worker, new Error(`the engine thread exited (code ${code})`));
    });
  }

  countPromptTokens(turns: readonly ChatTurn[]): number {
    return promptPositions(this.tokenizer, this.manifest, turns);
  }

  stats(): EngineStats {
    return this.latestStats;
  }

  async chat(request: ChatRequest): Promise<ChatResult> {
    if (this.closing) throw new Error('The model engine is shutting down.');
    if (this.dead) {
      this.restarting ??= this.restart().finally(() => (this.restarting = undefined));
      await this.restarting;
    }
    const id = this.nextId++;
    const { signal, ...rest } = request;
    const worker = this.worker;
    // The listener goes when the chat settles: one left on a signal that outlives the chat keeps its closure alive.
    const abort = () => worker.postMessage({ type: 'abort', id } satisfies ToEngine);
    return new Promise<ChatResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ type: 'chat', id, request: rest } satisfies ToEngine);
      signal?.addEventListener('abort', abort, { once: true });
    }).finally(() => signal?.removeEventListener('abort', abort));
  }

  /**
   * Answers the engine thread's request for an image file. The bytes cross in
   * shared memory: one copy here, none on arrival (a posted Uint8Array is
   * copied on both sides) and none again to the engine's decoder thread.
   */
  private async sendImage(worker: Worker, id: number, hash: string): Promise<void> {
    let answer: ToEngine;
    try {
      const bytes = await this.images.get(hash);
      let shared: Uint8Array | undefined;
      if (bytes) {
        shared = new Uint8Array(new SharedArrayBuffer(bytes.byteLength));
        shared.set(bytes);
      }
      answer = { type: 'image', id, bytes: shared };
    } catch (error) {
      answer = { type: 'image', id, error: errorToWire(error) };
    }
    worker.postMessage(answer);
  }

  private async restart(): Promise<void> {
    this.logger?.warn('restarting the engine thread');
    const { worker, ready } = await spawn(this.init);
    this.worker = worker;
    this.latestStats = ready.stats;
    this.attach(worker);
    this.dead = false;
  }

  private receive(worker: Worker, message: FromEngine): void {
    if (message.type === 'image') {
      void this.sendImage(worker, message.id, message.hash);
      return;
    }
    if (message.type !== 'result' && message.type !== 'error') return;
    this.latestStats = message.stats;
    const waiter = this.pending.get(message.id);
    if (!waiter) return;
    this.pending.delete(message.id);
    if (message.type === 'error') {
      waiter.reject(errorFromWire(message.error));
      return;
    }
    waiter.resolve(message.result);
  }

  private fail(worker: Worker, error: Error): void {
    if (worker !== this.worker || this.dead) return;
    this.dead = true;
    const failure = new Error(`The model engine stopped (${error.message}); the next question starts it again.`);
    this.logger?.error({ err: error }, 'engine thread failed');
    for (const waiter of this.pending.values()) waiter.reject(failure);
    this.pending.clear();
    void worker.terminate();
  }

  /** A test hook: ends the engine thread as a crash would, so that tests can check the restart. */
  crashThreadForTests(): Promise<number> {
    return this.worker.terminate();
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
    worker.postMessage({ type: 'close' } satisfies ToEngine);
    const timeout = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timeout);
  }
}
