/**
 * A checkpoint folder as a WeightSource. The layouts are tried in the order
 * transformers' from_pretrained tries them, safetensors first: it cannot carry
 * code and its header is plain JSON, so when a folder has both, the safer and
 * cheaper copy is read.
 *
 *   model.safetensors | model.safetensors.index.json (+ shards)
 *   pytorch_model.bin | pytorch_model.bin.index.json (+ shards)
 *
 * Opening reads every shard's directory (zip central directory + data.pkl, or
 * the safetensors header) so names and shapes are known up front and a
 * missing or truncated shard fails before any conversion work; tensor bytes
 * are read later, one tensor at a time, each shard opened on its first read.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../../../src/errors.js';
import type { TensorInfo, WeightSource } from '../weights.js';
import { readSafetensors } from './safetensors.js';
import { type ShardFile, readTensor } from './shard-file.js';
import { type ShardTensor, readTorchZip } from './torch-zip.js';

type ShardReader = (filePath: string) => Promise<ShardTensor[]>;

const LAYOUTS: { file: string; read: ShardReader; sharded: boolean }[] = [
  { file: 'model.safetensors', read: readSafetensors, sharded: false },
  { file: 'model.safetensors.index.json', read: readSafetensors, sharded: true },
  { file: 'pytorch_model.bin', read: readTorchZip, sharded: false },
  { file: 'pytorch_model.bin.index.json', read: readTorchZip, sharded: true },
];

export class CheckpointWeights implements WeightSource {
  readonly names: readonly string[];
  private readonly tensors: Map<string, ShardTensor>;
  private closed = false;

  constructor(
    /** What was opened, for messages: the index or weight file. */
    readonly description: string,
    tensors: ShardTensor[],
  ) {
    this.tensors = new Map(tensors.map((t) => [t.info.name, t]));
    this.names = tensors.map((t) => t.info.name);
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    return t && { ...t.info, shape: [...t.info.shape] };
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.tensors.get(name);
    if (!t) throw new UserInputError(`The checkpoint ${this.description} has no tensor "${name}".`, 'checkpoint_invalid');
    if (this.closed) throw new Error(`The checkpoint ${this.description} is closed.`);
    return readTensor(t.location);
  }

  async close(): Promise<void> {
    this.closed = true;
    const files = new Set<ShardFile>([...this.tensors.values()].map((t) => t.location.file));
    await Promise.all([...files].map((f) => f.close()));
  }
}

/**
 * Opens a checkpoint folder (or one weight / index file in it). Throws a
 * UserInputError: 'checkpoint_missing' when there is nothing to read or a
 * shard is absent, 'checkpoint_invalid' when a file is damaged,
 * 'checkpoint_unsafe' when a pickle names anything but tensors.
 */
export async function openCheckpoint(dirOrFile: string): Promise<CheckpointWeights> {
  const stats = await stat(dirOrFile).catch(() => undefined);
  if (!stats) throw new UserInputError(`The checkpoint ${dirOrFile} does not exist.`, 'checkpoint_missing');
  if (stats.isFile()) {
    const base = path.basename(dirOrFile);
    const layout = LAYOUTS.find((l) => l.file === base) ?? {
      file: base,
      sharded: base.endsWith('.index.json'),
      read: base.endsWith('.safetensors') || base.endsWith('.safetensors.index.json') ? readSafetensors : readTorchZip,
    };
    return openLayout(path.dirname(dirOrFile), layout);
  }
  for (const layout of LAYOUTS) {
    if (await isFile(path.join(dirOrFile, layout.file))) return openLayout(dirOrFile, layout);
  }
  throw new UserInputError(
    `No weights in ${dirOrFile}: looked for ${LAYOUTS.map((l) => l.file).join(', ')}.`,
    'checkpoint_missing',
  );
}

async function openLayout(dir: string, layout: { file: string; read: ShardReader; sharded: boolean }): Promise<CheckpointWeights> {
  const description = path.join(dir, layout.file);
  if (!layout.sharded) return new CheckpointWeights(description, await layout.read(description));

  const weightMap = await readIndex(description);
  const shards = [...new Set(weightMap.values())];
  for (const shard of shards) {
    if (!(await isFile(path.join(dir, shard)))) {
      throw new UserInputError(`${shard} is missing from ${dir} (${layout.file} lists it); download it again.`, 'checkpoint_missing');
    }
  }
  const tensors: ShardTensor[] = [];
  const seen = new Map<string, string>();
  for (const shard of shards) {
    const held = await layout.read(path.join(dir, shard));
    for (const t of held) {
      const other = seen.get(t.info.name);
      if (other) throw new UserInputError(`Tensor "${t.info.name}" is in both ${other} and ${shard}.`, 'checkpoint_invalid');
      seen.set(t.info.name, shard);
      tensors.push(t);
    }
  }
  for (const [name, shard] of weightMap) {
    if (seen.get(name) !== shard) {
      throw new UserInputError(`${layout.file} puts tensor "${name}" in ${shard}, which does not hold it.`, 'checkpoint_invalid');
    }
  }
  return new CheckpointWeights(description, tensors);
}

/** weight_map (tensor name -> shard file name) of a transformers index file. */
async function readIndex(indexPath: string): Promise<Map<string, string>> {
  const name = path.basename(indexPath);
  const invalid = (why: string) => new UserInputError(`${name} is not a readable checkpoint index: ${why}.`, 'checkpoint_invalid');
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch {
    throw invalid('it is not valid JSON');
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (!weightMap || typeof weightMap !== 'object' || Array.isArray(weightMap)) throw invalid('it has no weight_map object');
  const entries = Object.entries(weightMap);
  if (entries.length === 0) throw invalid('its weight_map is empty');
  for (const [tensor, shard] of entries) {
    // Shards sit next to the index; a path here could point anywhere on disk.
    if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..' || shard === '.' || shard === '') {
      throw invalid(`tensor "${tensor}" maps to ${JSON.stringify(shard)}, which is not a file name in the same folder`);
    }
  }
  return new Map(entries as [string, string][]);
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined))?.isFile() ?? false;
}
