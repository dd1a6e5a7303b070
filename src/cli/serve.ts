import type { Command } from 'commander';
import { surfaceSecretKeys, surfaces as registry } from '../../adapters/index.js';
import type { RunningSurface, SurfaceContext } from '../assistant/surface.js';
import { loadConfig } from '../config/index.js';
import { UserInputError } from '../errors.js';
import { createLogger } from '../logger.js';
import { createRuntime } from '../runtime.js';
import { ensureModelPack } from './default-pack.js';

/**
 * `lisa-bot serve`: every surface of the registry (adapters/index.ts) that is
 * switched on: the web chat unless disabled, Discord and Slack when their
 * tokens are set. The CLI is where the core and the adapters are put
 * together; an entry loads its platform SDK only when it starts, so serve
 * never loads an SDK it doesn't use.
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
  await ensureModelPack(config, logger);
  const runtime = await createRuntime(config, logger);
  const context: SurfaceContext = { assistant: runtime.assistant, config, logger, metrics: runtime.metrics, readiness: runtime.readiness };
  const running: RunningSurface[] = [];
  const stop = async () => {
    await Promise.allSettled(running.map((s) => s.stop()));
    await runtime.close();
  };
  try {
    for (const surface of switchedOn) running.push(await surface.start(context));
  } catch (error) {
    await stop();
    throw error;
  }
  for (const surface of running) logger.info({ surface: surface.name, url: surface.url }, `${surface.name} ready${surface.url ? ` at ${surface.url}` : ''}`);
  if (runtime.assistant.model.demo) {
    logger.warn(`model "${runtime.assistant.model.name}" is a demo pack, not LISA: answers only find the toy palette colours`);
  }

  await new Promise<void>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      runtime.readiness.markNotReady('shutting down');
      resolve();
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  await stop();
}
