/**
 * The SAM image encoder on a thread of its own, with its own session: it does
 * not depend on the text, so it runs while the engine's thread runs the
 * vision encoder, the prefill and the decoding steps (onnxruntime-node's
 * run() holds the thread that calls it for the whole graph: on one thread,
 * graphs alternate). If the thread dies, the encodes in flight fail and the
 * next one starts a fresh thread.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { errorFromWire } from '../errors.js';
import type { PackOptions } from './pack.js';
import type { FromSam, SamThreadInit, ToSam } from './protocol.js';

export interface SamEncoding {
  /** image_embeddings [1, 256, 64, 64]. */
  embeddings: Float32Array;
  /** The input, handed back for reuse. */
  pixels: Float32Array;
  /** When the graph ran, in this thread's performance.now() milliseconds. */
  start: number;
  end: number;
}

type Waiter = { resolve: (encoding: SamEncoding) => void; reject: (error: Error) => void };

async function spawn(init: SamThreadInit): Promise<Worker> {
  // As for the engine thread: onnxruntime scans the command line on the thread's stack (command-line.ts).
  const worker = new Worker(new URL('./sam-thread-entry.js', import.meta.url), { workerData: init, resourceLimits: { stackSizeMb: 16 } });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once('message', (message: FromSam) => {
        if (message.type === 'ready') resolve();
        else if (message.type === 'failed') reject(errorFromWire(message.error));
        else reject(new Error(`unexpected first message from the SAM encoder thread: ${message.type}`));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the SAM encoder thread exited while loading (code ${code})`)));
    });
    return worker;
  } catch (error) {
    await worker.terminate();
    throw error;
  }
}

export class SamEncoderThread {
  private nextId = 0;
  private readonly pending = new Map<number, Waiter>();
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private closing = false;

  private constructor(
    private readonly init: SamThreadInit,
    worker: Worker,
  ) {
    this.attach(worker);
  }

  static async open(packDir: string, options: PackOptions): Promise<SamEncoderThread> {
    const { logger, graphs: _graphs, ...rest } = options;
    const init: SamThreadInit = { packDir, options: rest, logLevel: (logger as Logger | undefined)?.level ?? 'info' };
    return new SamEncoderThread(init, await spawn(init));
  }

  /** Runs the SAM image encoder on `pixels` (3 x size x size floats, moved to the thread and back). */
  async encode(pixels: Float32Array): Promise<SamEncoding> {
    if (this.closing) throw new Error('The model engine is shutting down.');
    const worker = this.worker ?? (await (this.starting ??= spawn(this.init).then((w) => this.attach(w)).finally(() => (this.starting = undefined))));
    const id = this.nextId++;
    return new Promise<SamEncoding>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ type: 'encode', id, pixels } satisfies ToSam, [pixels.buffer as ArrayBuffer]);
    });
  }

  private attach(worker: Worker): Worker {
    this.worker = worker;
    worker.on('message', (message: FromSam) => this.receive(message));
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => {
      if (!this.closing) this.fail(worker, new Error(`the SAM encoder thread exited (code ${code})`));
    });
    return worker;
  }

  private receive(message: FromSam): void {
    if (message.type !== 'encoded' && message.type !== 'error') return;
    const waiter = this.pending.get(message.id);
    this.pending.delete(message.id);
    if (!waiter) return;
    if (message.type === 'error') {
      waiter.reject(errorFromWire(message.error));
      return;
    }
    const { embeddings, pixels, startEpochMs, endEpochMs } = message;
    waiter.resolve({ embeddings, pixels, start: startEpochMs - performance.timeOrigin, end: endEpochMs - performance.timeOrigin });
  }

  private fail(worker: Worker, error: Error): void {
    if (worker !== this.worker) return;
    this.worker = undefined;
    const failure = new Error(`The SAM image encoder stopped (${error.message}); the next question starts it again.`);
    for (const waiter of this.pending.values()) waiter.reject(failure);
    this.pending.clear();
    void worker.terminate();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.starting?.catch(() => undefined);
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'close' } satisfies ToSam);
    const timeout = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timeout);
  }
}
