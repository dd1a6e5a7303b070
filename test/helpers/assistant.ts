import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeToyPack } from '../../models/generator/toy.js';
import type { Assistant } from '../../src/assistant/assistant.js';
import { surfaces } from '../../adapters/index.js';
import { type Config, loadConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/logger.js';
import { type Runtime, createRuntime } from '../../src/runtime.js';

type Overrides = { [K in keyof Config]?: Partial<Config[K]> };

export interface ToyAssistant {
  assistant: Assistant;
  runtime: Runtime;
  config: Config;
  /** Temp folder holding the pack and the SQLite file. */
  dir: string;
  close(): Promise<void>;
}

/**
 * A real assistant (engine, SQLite sessions, in-process queue) over a freshly
 * generated toy pack, with the packaged defaults plus `overrides` — what
 * `lisa-bot serve` runs, minus the surfaces.
 */
export async function createToyAssistant(overrides: Overrides = {}, options: { dtype?: 'float32' | 'float16' } = {}): Promise<ToyAssistant> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-assistant-'));
  const pack = path.join(dir, 'toy');
  await writeToyPack(pack, { dtype: options.dtype });
  const defaults = loadConfig({ surfaces, env: {} });
  const config = { ...defaults } as Config & Record<string, unknown>;
  for (const [section, values] of Object.entries(overrides)) {
    (config as Record<string, unknown>)[section] = { ...(defaults as unknown as Record<string, object>)[section], ...values };
  }
  config.model = { ...config.model, path: pack, providers: ['cpu'], ...overrides.model };
  config.store = { ...config.store, url: `sqlite://${path.join(dir, 'sessions.sqlite')}`, ...overrides.store };
  // Lossless overlays: tests compare their pixels exactly.
  config.render = { format: 'png', ...overrides.render };
  const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'silent' });
  const runtime = await createRuntime(config, logger);
  return {
    assistant: runtime.assistant,
    runtime,
    config,
    dir,
    async close() {
      await runtime.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
