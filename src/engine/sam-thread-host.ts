/**
 * The SAM image encoder's own thread (sam-thread.ts). onnxruntime-node runs a
 * graph as one synchronous native call on the calling thread, so on the
 * engine's thread the SAM encoder and the language model alternate; here the
 * encoder runs while the engine's thread prefills and decodes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToWire } from '../errors.js';
import { createLogger } from '../logger.js';
import { openPack, runGraph } from './pack.js';
import type { FromSam, SamThreadInit, ToSam } from './protocol.js';
import { floatTensor } from './tensors.js';

const port = parentPort!;
const init = workerData as SamThreadInit;
const send = (message: FromSam, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
const epochMs = () => performance.timeOrigin + performance.now();

try {
  const pack = await openPack(init.packDir, { ...init.options, graphs: ['samImageEncoder'], logger: createLogger({ level: init.logLevel }) });
  const { size } = pack.manifest.sam;
  send({ type: 'ready' });
  port.on('message', (message: ToSam) => {
    if (message.type === 'close') {
      void Promise.allSettled(Object.values(pack.sessions).map((s) => s.release())).finally(() => port.close());
      return;
    }
    const { id, pixels } = message;
    const startEpochMs = epochMs();
    runGraph(pack, 'samImageEncoder', { pixel_values: floatTensor('float32', pixels, [1, 3, size, size]) }).then(
      (out) => {
        const endEpochMs = epochMs();
        // A copy the thread owns (the output may sit in memory onnxruntime manages), moved over.
        const embeddings = (out.image_embeddings!.data as Float32Array).slice();
        send({ type: 'encoded', id, embeddings, pixels, startEpochMs, endEpochMs }, [embeddings.buffer as ArrayBuffer, pixels.buffer as ArrayBuffer]);
      },
      (error: unknown) => send({ type: 'error', id, error: errorToWire(error), pixels }, [pixels.buffer as ArrayBuffer]),
    );
  });
} catch (error) {
  send({ type: 'failed', error: errorToWire(error) });
}
