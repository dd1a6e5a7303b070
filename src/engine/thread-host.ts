/**
 * The engine's own thread. onnxruntime-node runs a graph as one synchronous
 * native call (scheduled with setImmediate), so on the main thread every SAM
 * encoder or prefill would freeze the chat surfaces for its whole duration.
 * Here it freezes only this thread; the main thread talks to it by messages
 * (protocol.ts), and answers its requests for image files.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorFromWire, errorToWire } from '../errors.js';
import { createLogger } from '../logger.js';
import { Engine } from './engine.js';
import type { FromEngine, ThreadInit, ToEngine } from './protocol.js';
import type { ImageSource } from './types.js';

const port = parentPort!;
const init = workerData as ThreadInit;
const logger = createLogger({ level: init.logLevel });
const send = (message: FromEngine) => port.postMessage(message);

/** Image files, asked of the calling side by hash. */
const waiting = new Map<number, { resolve: (bytes: Uint8Array | undefined) => void; reject: (error: Error) => void }>();
let nextImageId = 0;
const images: ImageSource = {
  get(hash) {
    const id = nextImageId++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      send({ type: 'image', id, hash });
    });
  },
};

try {
  const engine = await Engine.open(init.packDir, { ...init.options, images, logger });
  const running = new Map<number, AbortController>();
  send({ type: 'ready', manifest: engine.manifest, provider: engine.provider, stats: engine.stats() });
  port.on('message', (message: ToEngine) => {
    switch (message.type) {
      case 'abort':
        running.get(message.id)?.abort();
        return;
      case 'close':
        void engine.close().finally(() => port.close());
        return;
      case 'image': {
        const waiter = waiting.get(message.id);
        waiting.delete(message.id);
        if (message.error) waiter?.reject(errorFromWire(message.error));
        else waiter?.resolve(message.bytes);
        return;
      }
      case 'chat': {
        const controller = new AbortController();
        running.set(message.id, controller);
        engine
          .chat({ ...message.request, signal: controller.signal })
          .then(
            (result) => send({ type: 'result', id: message.id, result, stats: engine.stats() }),
            (error: unknown) => send({ type: 'error', id: message.id, error: errorToWire(error), stats: engine.stats() }),
          )
          .finally(() => running.delete(message.id));
      }
    }
  });
} catch (error) {
  send({ type: 'failed', error: errorToWire(error) });
}
