import { access } from 'node:fs/promises';
import path from 'node:path';
import { writeToyPack } from '../../models/generator/toy.js';
import type { Config } from '../config/index.js';
import { MANIFEST_FILE } from '../engine/manifest.js';
import type { Logger } from '../logger.js';

/** The pack folder the defaults name; the toy pack is generated there on first start. */
const DEFAULT_PACK = path.join('models', 'toy');

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

/**
 * With no model pack configured (the default path, still empty), the toy pack
 * is generated so that a fresh clone runs. Any other missing pack is an error.
 */
export async function ensureModelPack(config: Config, logger: Logger): Promise<string> {
  const packDir = config.model.path;
  if (await exists(path.join(packDir, MANIFEST_FILE))) return packDir;
  if (path.normalize(packDir) === DEFAULT_PACK) {
    logger.warn({ path: packDir }, 'no model pack configured: generating the toy pack (a demo model, not LISA)');
    await writeToyPack(packDir);
  }
  return packDir;
}
