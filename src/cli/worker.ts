import type { Command } from 'commander';
import { surfaceSecretKeys, surfaces as registry } from '../../adapters/index.js';
import { type InferenceJob, type InferenceResult, inferenceHandler, measuredHandler } from '../assistant/inference.js';
import { loadConfig } from '../config/index.js';
import type { ConversationStores } from '../conversation/index.js';
import type { EngineThread } from '../engine/thread.js';
import { UserInputError } from '../errors.js';
import type { JobHandler } from '../jobs/queue.js';
import { type BullmqWorker, startBullmqWorker } from '../jobs/bullmq-worker.js';
import { type Logger, createLogger } from '../logger.js';
import { Metrics, Readiness } from '../metrics/index.js';
import { startHealthServer } from '../metrics/server.js';
import { packFingerprint } from '../engine/manifest.js';
import { QUEUE_UNREACHABLE } from '../runtime-queued.js';
import { openEngine, openStores } from '../runtime.js';
import { ensureModelPack } from './default-pack.js';
import { exitSoonAfterShutdown, shutdownSignals } from './shutdown.js';

/**
 * `lisa-bot worker`: loads the model pack and runs turns from the Redis job
 * queue that `lisa-bot serve` (with the same queue.url) fills. Start one per
 * GPU (model.deviceId), on as many hosts as needed. SIGTERM drains: the
 * running turn finishes, no new one is taken, exit 0.
 */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description("run queued turns from the Redis job queue (queue.url) on this host's GPU (model.deviceId)")
    .option('--config <file>', 'YAML config laid over the defaults; use the same queue, store and model as serve')
    .action(async (options: { config?: string }) => {
      await work(options.config);
    });
}

async function work(configFile: string | undefined): Promise<void> {
  const config = loadConfig({ file: configFile, surfaces: registry });
  if (config.queue.url === '') {
    throw new UserInputError(
      'lisa-bot worker takes turns from a Redis job queue: set queue.url (and store.url) to redis://… as for lisa-bot serve',
      'config_invalid',
    );
  }
  const logger = createLogger({ level: config.log.level, redact: surfaceSecretKeys, name: 'lisa-bot-worker' });
  const signals = shutdownSignals(logger);
  const metrics = new Metrics();
  const readiness = new Readiness();
  // First, so that /healthz answers (and /readyz says why not ready) while the model loads.
  const { metricsHost, metricsPort } = config.worker;
  const health =
    metricsPort > 0 ? await startHealthServer({ host: metricsHost, port: metricsPort, metrics, readiness, logger, field: 'worker.metricsPort' }) : undefined;
  if (health) logger.info({ url: health.url }, `metrics and health at ${new URL('metrics', health.url).href}`);

  let stores: ConversationStores | undefined;
  let engine: EngineThread | undefined;
  let worker: BullmqWorker | undefined;
  const close = async (force: boolean) => {
    readiness.markNotReady('shutting down');
    await worker?.close({ force });
    await engine?.close();
    await stores?.close();
    await health?.close();
  };
  try {
    await ensureModelPack(config, logger);
    // The store is where each turn's image is read by hash; a bad store.url fails here, before the long model load.
    stores = await openStores(config);
    const loading = openEngine(config, stores, metrics, logger);
    engine = await Promise.race([loading, signals.first.then(() => undefined)]);
    if (!engine) {
      // Stopped while loading: the engine is closed once its load ends, if the process has not exited by then.
      void loading.then((loaded) => loaded.close(), () => undefined);
      await close(true);
      exitSoonAfterShutdown(logger);
      return;
    }
    worker = await startBullmqWorker<InferenceJob, InferenceResult>(config.queue.url, config.queue.name, countedHandler(measuredHandler(inferenceHandler(engine), metrics), metrics, logger), {
      concurrency: config.worker.concurrency,
      lockMs: config.queue.lockMs,
      stalledIntervalMs: config.queue.stalledIntervalMs,
      connectTimeoutMs: config.queue.connectTimeoutMs,
    });
  } catch (error) {
    await close(true);
    throw error;
  }
  const running = worker;
  metrics.watchQueue(running);
  readiness.addCheck(() => (running.reachable() ? undefined : QUEUE_UNREACHABLE));
  readiness.markReady();
  logger.info(
    { queue: config.queue.name, pack: packFingerprint(engine.manifest), provider: engine.provider, concurrency: config.worker.concurrency },
    `worker ready: taking turns from queue ${config.queue.name}`,
  );

  await signals.first;
  // A second signal while draining drops the running turn: another worker retakes it once its lock expires.
  await Promise.race([close(false), signals.second.then(() => close(true))]);
  logger.info('worker stopped');
  exitSoonAfterShutdown(logger);
}

/** The handler's turns counted by outcome and timed in this worker's metrics, and logged. */
function countedHandler(handler: JobHandler<InferenceJob, InferenceResult>, metrics: Metrics, logger: Logger): JobHandler<InferenceJob, InferenceResult> {
  return async (job, context) => {
    const startedAt = performance.now();
    logger.info({ jobId: context.jobId }, 'turn started');
    try {
      const result = await handler(job, context);
      const seconds = (performance.now() - startedAt) / 1000;
      metrics.turnAnswered(seconds);
      logger.info({ jobId: context.jobId, ms: Math.round(seconds * 1000), segments: result.segments.length }, 'turn finished');
      return result;
    } catch (error) {
      metrics.turnFailed(error);
      logger.info({ jobId: context.jobId, err: error }, 'turn failed');
      throw error;
    }
  };
}
