import type { Command } from 'commander';
import type { RunningSurface, SurfaceContext } from '../assistant/surface.js';
import { loadConfig } from '../config/index.js';
import { createLogger } from '../logger.js';
import { createRuntime } from '../runtime.js';

/**
 * `lisa-bot serve`: every surface whose credentials are configured (the web
 * chat unless disabled). Adapters are imported only when switched on, so the
 * core never loads a platform SDK it doesn't use.
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve the web chat, and Discord / Slack when their tokens are set')
    .option('--config <file>', 'YAML config laid over config/default.yaml')
    .action(async (options: { config?: string }) => {
      await serve(options.config);
    });
}

async function serve(configFile: string | undefined): Promise<void> {
  const config = loadConfig({ file: configFile });
  const logger = createLogger({ level: config.log.level });
  const runtime = await createRuntime(config, logger);
  const context: SurfaceContext = { assistant: runtime.assistant, config, logger };
  const surfaces: RunningSurface[] = [];
  const stop = async () => {
    await Promise.allSettled(surfaces.map((s) => s.stop()));
    await runtime.close();
  };
  try {
    if (config.web.enabled) {
      const { startWeb } = await import('../../adapters/web/index.js');
      surfaces.push(await startWeb(context));
    }
    if (config.secrets.DISCORD_TOKEN) {
      const { startDiscord } = await import('../../adapters/discord/index.js');
      surfaces.push(await startDiscord(context));
    }
    if (config.secrets.SLACK_BOT_TOKEN) {
      const { startSlack } = await import('../../adapters/slack/index.js');
      surfaces.push(await startSlack(context));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  if (surfaces.length === 0) {
    await stop();
    throw new Error('nothing to serve: the web chat is disabled and no Discord or Slack token is set');
  }
  for (const surface of surfaces) logger.info({ surface: surface.name, url: surface.url }, `${surface.name} ready${surface.url ? ` at ${surface.url}` : ''}`);
  if (runtime.assistant.model.demo) {
    logger.warn(`model "${runtime.assistant.model.name}" is a demo pack, not LISA: answers only find the toy palette colours`);
  }

  await new Promise<void>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', shutdown);
    process.once('SIGTERM', shutdown);
  });
  await stop();
}
