import { Assistant } from './assistant/assistant.js';
import { type InferenceJob, type InferenceResult, inferenceHandler } from './assistant/inference.js';
import type { Config } from './config/index.js';
import { type ConversationStores, openConversationStores } from './conversation/index.js';
import { EngineThread } from './engine/thread.js';
import type { ChatEngine } from './engine/types.js';
import { InProcessQueue, type JobQueue } from './jobs/index.js';
import { UserInputError } from './errors.js';
import type { Logger } from './logger.js';
import { Metrics, Readiness } from './metrics/index.js';
import { DecodedImages } from './render/decoded-images.js';
import { OverlayWorkers } from './render/overlay-workers.js';

/** Everything behind the surfaces: engine, stores, queue and the assistant over them (config.model.path must hold a pack: see cli/default-pack.ts). */
export interface Runtime {
  engine: ChatEngine;
  stores: ConversationStores;
  queue: JobQueue<InferenceJob, InferenceResult>;
  assistant: Assistant;
  metrics: Metrics;
  /** Ready once the model is loaded; not ready again once closing. */
  readiness: Readiness;
  close(): Promise<void>;
}

export async function createRuntime(config: Config, logger: Logger): Promise<Runtime> {
  if (config.queue.url !== '') {
    // Refused, not ignored: a user who points this at Redis expects GPU workers to take the jobs.
    throw new UserInputError(
      'queue.url: the Redis job queue for separate GPU workers is not available in this version; leave queue.url empty (jobs run in this process).',
      'config_invalid',
    );
  }
  const packDir = config.model.path;
  const stores = await openConversationStores(config.store.url, { idleMinutes: config.store.sessionIdleMinutes });
  let engine: EngineThread | undefined;
  // This side's pool decodes images for overlays and draws them; the engine has its own
  // pixel work on its own thread. One thread: with two, 8 conversations at once on the
  // toy pack finished no sooner on 2 cores.
  const pixels = new OverlayWorkers(1);
  const decodedImages = new DecodedImages(pixels, { maxPixels: config.limits.maxImagePixels });
  const metrics = new Metrics();
  const readiness = new Readiness();
  try {
    const loadStartedAt = performance.now();
    // The engine gets a thread of its own: graph runs would otherwise block every surface's event loop.
    // It reads image files from the conversation store, by hash, as a worker elsewhere would.
    const opened = await EngineThread.open(packDir, {
      images: stores.images,
      providers: config.model.providers,
      deviceId: config.model.deviceId,
      cpuThreads: config.model.cpuThreads,
      draftLength: config.model.draftLength,
      maxImagePixels: config.limits.maxImagePixels,
      cache: { imageBytes: config.model.cache.imageBytes, kvBytes: config.model.cache.kvBytes },
      logger,
    });
    engine = opened;
    metrics.modelLoaded((performance.now() - loadStartedAt) / 1000, opened.provider);
    const queue: JobQueue<InferenceJob, InferenceResult> = new InProcessQueue({
      handler: inferenceHandler(opened),
      maxQueue: config.limits.maxQueue,
    });
    metrics.watchQueue(queue);
    const manifest = opened.manifest;
    const contextLength = manifest.decoder.contextLength;
    // History is trimmed to leave the answer some room, not just one token.
    const answerRoom = Math.min(128, manifest.generation.maxNewTokens);
    const assistant = new Assistant({
      stores,
      queue,
      model: {
        name: manifest.name,
        demo: manifest.demo ?? false,
        segToken: manifest.tokens.seg,
        fits: (turns) => opened.countPromptTokens(turns) + answerRoom <= contextLength,
      },
      limits: config.limits,
      overlayFormat: config.render.format,
      pixels,
      decodedImages,
      logger,
      metrics,
    });
    readiness.markReady();
    return {
      engine: opened,
      stores,
      queue,
      assistant,
      metrics,
      readiness,
      async close() {
        readiness.markNotReady('shutting down');
        await queue.close();
        await opened.close();
        await stores.close();
        decodedImages.clear();
        await pixels.close();
      },
    };
  } catch (error) {
    await engine?.close();
    await stores.close();
    await pixels.close();
    throw error;
  }
}
