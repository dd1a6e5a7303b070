import type { Command } from 'commander';
import { surfaceSecretKeys, surfaces as registry } from '../../adapters/index.js';
import type { RunningSurface, SurfaceContext } from '../assistant/surface.js';
import { type Config, loadConfig } from '../config/index.js';
import { UserInputError } from '../errors.js';
import { type Logger, createLogger } from '../logger.js';
import { startHealthServer } from '../metrics/server.js';
import { type ServeRuntime, createRuntime } from '../runtime.js';
import { createQueuedRuntime } from '../runtime-queued.js';
import { ensureModelPack } from './default-pack.js';
import { exitSoonAfterShutdown, shutdownSignals } from './shutdown.js';

/**
 * `lisa-bot serve`: every surface of the registry (adapters/index.ts) that is
 * switched on: the web chat unless disabled, Discord and Slack when their
 * tokens are set. The CLI is where the core and the adapters are put
 * together; an entry loads its platform SDK only when it starts, so serve
 * never loads an SDK it doesn't use. With queue.url, turns run in
 * `lisa-bot worker` processes and serve never loads the model.
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the web chat, and Discord / Slack when their tokens are set')
    .option('--config <file>', 'YAML config laid over the defaults (config/default.yaml, adapters/*/defaults.yaml)')
    .action(async (options: { config?: string }) => {
      await serve(options.config);
    });
}

async function serve(configFile: string | undefined): Promise<void> {
  const config = loadConfig({ file: configFile, surfaces: registry });
  const switchedOn = registry.filter((surface) => surface.enabled(config));
  // Before the model loads: nothing to serve is a config mistake, said at once.
  if (switchedOn.length === 0) {
    throw new UserInputError(
      `nothing to serve: no surface is switched on (one is when ${registry.map((s) => s.switchedOnBy).join(', or when ')})`,
      'config_invalid',
    );
  }
  const logger = createLogger({ level: config.log.level, redact: surfaceSecretKeys });
  const signals = shutdownSignals(logger);
  await ensureModelPack(config, logger);
  const runtime = config.queue.url === '' ? await createRuntime(config, logger) : await createQueuedRuntime(config, logger);
  const context: SurfaceContext = { assistant: runtime.assistant, config, logger, metrics: runtime.metrics, readiness: runtime.readiness };
  const running: RunningSurface[] = [];
  const closers: Array<() => Promise<void>> = [];
  const stop = async () => {
    runtime.readiness.markNotReady('shutting down');
    await Promise.allSettled(running.map((s) => s.stop()));
    await runtime.close();
    await Promise.allSettled(closers.map((close) => close()));
  };
  try {
    for (const surface of switchedOn) running.push(await surface.start(context));
    const health = await healthServer(config, switchedOn.some((s) => s.name === 'web'), runtime, logger);
    if (health) closers.push(health.close);
  } catch (error) {
    await stop();
    throw error;
  }
  for (const surface of running) logger.info({ surface: surface.name, url: surface.url }, `${surface.name} ready${surface.url ? ` at ${surface.url}` : ''}`);
  if (runtime.assistant.model.demo) {
    logger.warn(`model "${runtime.assistant.model.name}" is a demo pack, not LISA: answers only find the toy palette colours`);
  }

  await signals.first;
  runtime.readiness.markNotReady('shutting down');
  // New turns are told LISA is restarting while the ones in hand are answered and delivered.
  const drained = await Promise.race([runtime.assistant.drain(SERVE_DRAIN_MS), signals.second.then(() => false)]);
  if (!drained) logger.warn('stopping with turns still unanswered: their users are told LISA is restarting');
  await Promise.race([stop(), signals.second]);
  exitSoonAfterShutdown(logger);
}

/** How long serve waits, after SIGTERM, for the turns it has accepted; beyond that they are cancelled. */
const SERVE_DRAIN_MS = 60_000;

/** With the web chat off, /metrics, /healthz and /readyz get a server of their own (serve.metricsPort). */
async function healthServer(config: Config, webOn: boolean, runtime: ServeRuntime, logger: Logger) {
  if (webOn || config.serve.metricsPort === 0) return undefined;
  const health = await startHealthServer({
    host: config.serve.metricsHost,
    port: config.serve.metricsPort,
    metrics: runtime.metrics,
    readiness: runtime.readiness,
    logger,
    field: 'serve.metricsPort',
  });
  logger.info({ url: health.url }, `metrics and health at ${new URL('metrics', health.url).href}`);
  return health;
}
