import type { InferenceJob, InferenceResult } from './assistant/inference.js';
import type { Config } from './config/index.js';
import { loadManifest } from './engine/manifest.js';
import { promptPositions } from './engine/prompt.js';
import { LisaTokenizer } from './engine/tokenizer.js';
import { BullmqJobQueue } from './jobs/bullmq.js';
import type { Logger } from './logger.js';
import { Metrics, Readiness } from './metrics/index.js';
import { type ServeRuntime, assembleRuntime, modelInfo, openStores } from './runtime.js';

/** What /readyz says while the queue's Redis cannot be reached. */
export const QUEUE_UNREACHABLE = 'the job queue (Redis) is unreachable';

/**
 * `lisa-bot serve` with `queue.url`: the surfaces' side only. Turns go to
 * `lisa-bot worker` processes through BullMQ; images reach them through the
 * shared store by hash. The model is never loaded here: only the pack's
 * manifest and tokenizer, to count prompts against the context window.
 */
export async function createQueuedRuntime(config: Config, logger: Logger): Promise<ServeRuntime> {
  const packDir = config.model.path;
  const manifest = await loadManifest(packDir);
  const tokenizer = await LisaTokenizer.load(packDir, manifest);
  const stores = await openStores(config);
  let queue: BullmqJobQueue<InferenceJob, InferenceResult>;
  try {
    queue = await BullmqJobQueue.open<InferenceJob, InferenceResult>({
      url: config.queue.url,
      name: config.queue.name,
      maxQueue: config.limits.maxQueue,
      connectTimeoutMs: config.queue.connectTimeoutMs,
    });
  } catch (error) {
    await stores.close();
    throw error;
  }
  const metrics = new Metrics();
  metrics.watchQueue(queue);
  const readiness = new Readiness();
  readiness.addCheck(() => (queue.reachable() ? undefined : QUEUE_UNREACHABLE));
  const model = modelInfo(manifest, (turns) => promptPositions(tokenizer, manifest, turns));
  logger.info({ queue: config.queue.name, pack: model.pack }, 'turns go to lisa-bot workers through the Redis job queue');
  return assembleRuntime({ config, stores, queue, model, metrics, readiness, logger });
}
