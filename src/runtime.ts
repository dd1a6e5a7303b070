import { Assistant, type ModelInfo } from './assistant/assistant.js';
import { type InferenceJob, type InferenceResult, inferenceHandler, measuredHandler } from './assistant/inference.js';
import type { Config } from './config/index.js';
import { type ConversationStores, openConversationStores } from './conversation/index.js';
import { type PackManifest, packFingerprint } from './engine/manifest.js';
import { EngineThread } from './engine/thread.js';
import type { ChatEngine, ChatTurn } from './engine/types.js';
import { InProcessQueue, type JobQueue } from './jobs/index.js';
import type { Logger } from './logger.js';
import { Metrics, Readiness } from './metrics/index.js';
import { DecodedImages } from './render/decoded-images.js';
import { OverlayWorkers } from './render/overlay-workers.js';

/** What the chat surfaces run on: stores, a job queue and the assistant over them. */
export interface ServeRuntime {
  stores: ConversationStores;
  queue: JobQueue<InferenceJob, InferenceResult>;
  assistant: Assistant;
  metrics: Metrics;
  /** Ready once turns can be answered (model loaded, or queue reachable); not ready again once closing. */
  readiness: Readiness;
  close(): Promise<void>;
}

/** The runtime of one process that also runs the model: engine, stores, in-process queue and assistant. */
export interface Runtime extends ServeRuntime {
  engine: ChatEngine;
}

/**
 * The in-process runtime (config.model.path must hold a pack: see
 * cli/default-pack.ts). `lisa-bot serve` with a queue URL uses
 * createQueuedRuntime (runtime-queued.ts) instead, which never loads the model.
 */
export async function createRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const stores = await openStores(config);
  const metrics = new Metrics();
  const readiness = new Readiness();
  let engine: EngineThread | undefined;
  try {
    // The engine gets a thread of its own: graph runs would otherwise block every surface's event loop.
    // It reads image files from the conversation store, by hash, as a worker elsewhere does.
    engine = await openEngine(config, stores, metrics, logger);
    const opened = engine;
    const queue = new InProcessQueue<InferenceJob, InferenceResult>({ handler: measuredHandler(inferenceHandler(opened), metrics), maxQueue: config.limits.maxQueue });
    metrics.watchQueue(queue);
    const model = modelInfo(opened.manifest, (turns) => opened.countPromptTokens(turns));
    return { ...assembleRuntime({ config, stores, queue, model, metrics, readiness, logger, closeEngine: () => opened.close() }), engine: opened };
  } catch (error) {
    await engine?.close();
    await stores.close();
    throw error;
  }
}

/** The conversation stores of `store.url`; a Redis one must answer within queue.connectTimeoutMs at start. */
export function openStores(config: Config): Promise<ConversationStores> {
  return openConversationStores(config.store.url, { idleMinutes: config.store.sessionIdleMinutes, connectTimeoutMs: config.queue.connectTimeoutMs });
}

/** Loads the model pack on its own thread, reading images from `stores`; counts the load in `metrics`. */
export async function openEngine(config: Config, stores: ConversationStores, metrics: Metrics, logger: Logger): Promise<EngineThread> {
  const loadStartedAt = performance.now();
  const engine = await EngineThread.open(config.model.path, {
    images: stores.images,
    providers: config.model.providers,
    deviceId: config.model.deviceId,
    cpuThreads: config.model.cpuThreads,
    draftLength: config.model.draftLength,
    maxImagePixels: config.limits.maxImagePixels,
    cache: { imageBytes: config.model.cache.imageBytes, kvBytes: config.model.cache.kvBytes },
    logger,
  });
  metrics.modelLoaded((performance.now() - loadStartedAt) / 1000, engine.provider);
  return engine;
}

/** What the assistant knows of the model without running it, from the pack's manifest and a prompt counter. */
export function modelInfo(manifest: PackManifest, countPromptTokens: (turns: readonly ChatTurn[]) => number): ModelInfo {
  const contextLength = manifest.decoder.contextLength;
  // History is trimmed to leave the answer some room, not just one token.
  const answerRoom = Math.min(128, manifest.generation.maxNewTokens);
  return {
    name: manifest.name,
    demo: manifest.demo ?? false,
    segToken: manifest.tokens.seg,
    pack: packFingerprint(manifest),
    fits: (turns) => countPromptTokens(turns) + answerRoom <= contextLength,
  };
}

/** What a runtime is made of, once its queue and model are known. */
interface RuntimeParts {
  config: Config;
  stores: ConversationStores;
  queue: JobQueue<InferenceJob, InferenceResult>;
  model: ModelInfo;
  metrics: Metrics;
  readiness: Readiness;
  logger: Logger;
  /** Closed after the queue and before the stores (the in-process engine reads images from them). */
  closeEngine?: () => Promise<void>;
}

/**
 * The assistant over `queue`, with the pixel work the surfaces' side does
 * (overlays are drawn here, never on a GPU worker), ready; `close` takes it
 * all down in order.
 */
export function assembleRuntime(parts: RuntimeParts): ServeRuntime {
  const { config, stores, queue, model, metrics, readiness, logger } = parts;
  // This side's pool decodes images for overlays and draws them; the engine has its own
  // pixel work on its own thread. One thread: with two, 8 conversations at once on the
  // toy pack finished no sooner on 2 cores.
  const pixels = new OverlayWorkers(1);
  const decodedImages = new DecodedImages(pixels, { maxPixels: config.limits.maxImagePixels });
  const assistant = new Assistant({
    stores,
    queue,
    model,
    limits: config.limits,
    overlayFormat: config.render.format,
    pixels,
    decodedImages,
    logger,
    metrics,
  });
  readiness.markReady();
  return {
    stores,
    queue,
    assistant,
    metrics,
    readiness,
    async close() {
      readiness.markNotReady('shutting down');
      await queue.close();
      await parts.closeEngine?.();
      await stores.close();
      decodedImages.clear();
      await pixels.close();
    },
  };
}
