/**
 * Which files of a Hub repo the converter needs. A LISA or CLIP repo holds much
 * more than the converter reads (CLIP ships its weights twice, plus TF and Flax
 * copies, ~1.7 GB each), so a download is limited to these names. The same rules
 * decide whether a cached snapshot is complete enough to use offline.
 */
import path from 'node:path';
import { UserInputError } from '../../src/errors.js';

export type ModelKind = 'lisa' | 'clip';

/** Weight layouts in the order they are preferred (safetensors first, as transformers does). */
const WEIGHT_LAYOUTS: Record<ModelKind, readonly string[]> = {
  lisa: ['model.safetensors.index.json', 'model.safetensors', 'pytorch_model.bin.index.json', 'pytorch_model.bin'],
  // CLIP ships one file; the index layouts are accepted in case a mirror shards it.
  clip: ['model.safetensors', 'pytorch_model.bin', 'model.safetensors.index.json', 'pytorch_model.bin.index.json'],
};

const REQUIRED: Record<ModelKind, readonly string[]> = {
  lisa: ['config.json', 'tokenizer.model'],
  clip: ['config.json', 'preprocessor_config.json'],
};

/** Fetched when the repo has them; the converter says which it misses. */
const OPTIONAL: Record<ModelKind, readonly string[]> = {
  lisa: ['added_tokens.json', 'special_tokens_map.json', 'tokenizer_config.json', 'generation_config.json'],
  clip: [],
};

const WHAT: Record<ModelKind, string> = {
  lisa: 'a LISA checkpoint (like xinlai/LISA-7B-v1)',
  clip: 'a CLIP vision tower (like openai/clip-vit-large-patch14)',
};

export interface FileSelection {
  /** Small files, then the weights file or index (shards are added once the index is read). */
  files: string[];
  /** The weights file, or the index naming the shards. */
  weights: string;
  isIndex: boolean;
}

/**
 * Picks the needed files among `names` (a repo listing or a cached snapshot).
 * Throws one line naming what is missing; `where` names the repo for it.
 */
export function selectFiles(kind: ModelKind, names: ReadonlySet<string>, where: string): FileSelection {
  const missing = REQUIRED[kind].filter((name) => !names.has(name));
  const weights = WEIGHT_LAYOUTS[kind].find((name) => names.has(name));
  if (missing.length > 0 || !weights) {
    const lacks = [...missing, ...(weights ? [] : [`weights (${WEIGHT_LAYOUTS[kind].join(', ')})`])];
    const nothing = missing.length === REQUIRED[kind].length && !weights;
    throw new UserInputError(
      `${where} ${nothing ? 'has none of the files of' : 'is not'} ${WHAT[kind]}: it has no ${lacks.join(', no ')}.`,
      'checkpoint_missing',
    );
  }
  const optional = OPTIONAL[kind].filter((name) => names.has(name));
  return { files: [...REQUIRED[kind], ...optional, weights], weights, isIndex: weights.endsWith('.index.json') };
}

/** The shard file names an index's weight_map points at, each once, in first-use order. */
export function shardsOf(indexText: string, indexName: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(indexText);
  } catch (error) {
    throw new UserInputError(`${indexName} is not valid JSON: ${(error as Error).message}`, 'checkpoint_invalid');
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new UserInputError(`${indexName} has no "weight_map" object.`, 'checkpoint_invalid');
  }
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  for (const shard of shards) {
    // Shard names become paths in the cache: refuse anything that is not a plain file name.
    if (typeof shard !== 'string' || shard === '' || path.basename(shard) !== shard || shard === '..' || shard.includes('\\')) {
      throw new UserInputError(`${indexName} names a shard ${JSON.stringify(shard)} that is not a plain file name.`, 'checkpoint_invalid');
    }
  }
  if (shards.length === 0) throw new UserInputError(`${indexName} maps no tensors to shards.`, 'checkpoint_invalid');
  return shards as string[];
}
