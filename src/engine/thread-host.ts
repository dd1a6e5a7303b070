/**
 * The engine's own thread. onnxruntime-node runs a graph as one synchronous
 * native call (scheduled with setImmediate), so on the main thread every SAM
 * encoder or prefill would freeze the chat surfaces for its whole duration.
 * Here it freezes only this thread; the main thread talks to it by messages.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { Engine, type EngineOptions } from './engine.js';
import { collectSoonAfter } from '../workers/memory.js';
import type { ChatRequest } from './types.js';

export interface ThreadInit {
  packDir: string;
  options: Omit<EngineOptions, 'logger'>;
  logLevel: string;
}

export type HostRequest =
  | { type: 'chat'; id: number; request: Omit<ChatRequest, 'signal'> }
  | { type: 'abort'; id: number }
  | { type: 'close' };

export interface SerialisedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

function serialise(error: unknown): SerialisedError {
  if (error instanceof UserInputError) return { name: error.name, message: error.message, code: error.code };
  const e = error as Error;
  return { name: e?.name ?? 'Error', message: e?.message ?? String(error), stack: e?.stack };
}

const port = parentPort!;
const init = workerData as ThreadInit;
const logger = createLogger({ level: init.logLevel });

try {
  const engine = await Engine.open(init.packDir, { ...init.options, logger });
  const running = new Map<number, AbortController>();
  port.postMessage({ type: 'ready', manifest: engine.manifest, provider: engine.provider, stats: engine.stats() });
  port.on('message', (message: HostRequest) => {
    if (message.type === 'abort') {
      running.get(message.id)?.abort();
      return;
    }
    if (message.type === 'close') {
      void engine.close().finally(() => port.close());
      return;
    }
    const controller = new AbortController();
    running.set(message.id, controller);
    engine
      .chat({ ...message.request, signal: controller.signal })
      .then(
        (result) => {
          port.postMessage({ type: 'result', id: message.id, result, stats: engine.stats(), cachedImages: engine.cachedImages() });
        },
        (error: unknown) =>
          port.postMessage({ type: 'error', id: message.id, error: serialise(error), stats: engine.stats(), cachedImages: engine.cachedImages() }),
      )
      .finally(() => {
        running.delete(message.id);
        // The turn's pixels are shared with other threads: see memory.ts.
        collectSoonAfter(message.request.decoded?.data.buffer.byteLength ?? 0);
      });
  });
} catch (error) {
  port.postMessage({ type: 'failed', error: serialise(error) });
}
