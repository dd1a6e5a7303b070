/**
 * A `torch.save` file (the zip format of torch >= 1.6): `<prefix>/data.pkl`
 * describes the tensors, `<prefix>/data/<key>` holds each storage's raw bytes,
 * stored uncompressed. yauzl reads the central directory (ZIP64 included, as
 * every LISA shard is over 4 GB) and each entry's local header; the storage
 * bytes are then read in place with positioned reads (shard-file.ts).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import yauzl from 'yauzl';
import { UserInputError } from '../../../src/errors.js';
import type { TensorInfo } from '../weights.js';
import { ITEM_SIZE, viewSpan } from './dtypes.js';
import { readStateDict } from './pickle.js';
import { ShardFile, type TensorLocation } from './shard-file.js';

/** data.pkl only describes tensors (~100 bytes each); anything near this is not a state dict. */
const MAX_PICKLE_BYTES = 256 << 20;

export interface ShardTensor {
  info: TensorInfo;
  location: TensorLocation;
}

/** The tensors of one torch.save zip, with where each one's bytes are. Reads only the zip's directory and data.pkl. */
export async function readTorchZip(filePath: string): Promise<ShardTensor[]> {
  const name = path.basename(filePath);
  const invalid = (why: string) => new UserInputError(`${name} is not a readable PyTorch checkpoint: ${why}.`, 'checkpoint_invalid');
  const { size } = await stat(filePath);
  let zip: yauzl.ZipFile | undefined;
  try {
    try {
      zip = await yauzl.openPromise(filePath, { autoClose: false, lazyEntries: true, strictFileNames: true });
    } catch (error) {
      throw invalid(`it is not a complete zip archive (${(error as Error).message})`);
    }
    const entries = new Map<string, yauzl.Entry>();
    try {
      for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry);
    } catch (error) {
      throw invalid(`its zip directory is damaged (${(error as Error).message})`);
    }
    const pickles = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pickles.length !== 1) {
      throw invalid(pickles.length ? `it holds ${pickles.length} data.pkl files` : 'it has no <folder>/data.pkl (pickle-only .bin files from torch < 1.6 are not supported)');
    }
    const prefix = pickles[0].slice(0, -'data.pkl'.length);
    const pickleEntry = entries.get(pickles[0])!;
    if (pickleEntry.uncompressedSize > MAX_PICKLE_BYTES) throw invalid(`its data.pkl is ${pickleEntry.uncompressedSize} bytes`);
    const pickle = await readWhole(zip, pickleEntry).catch((error: Error) => {
      throw invalid(`its data.pkl cannot be read (${error.message})`);
    });
    const refs = readStateDict(pickle, name);

    const file = new ShardFile(filePath, size);
    const bases = new Map<string, number>();
    const tensors: ShardTensor[] = [];
    for (const [tensorName, ref] of refs) {
      const { key, dtype, numel } = ref.storage;
      const entryName = `${prefix}data/${key}`;
      const entry = entries.get(entryName);
      if (!entry) throw invalid(`tensor "${tensorName}" uses storage ${entryName}, which the archive lacks`);
      if (entry.compressionMethod !== 0) throw invalid(`${entryName} is compressed (torch.save stores tensors uncompressed)`);
      if (entry.uncompressedSize < numel * ITEM_SIZE[dtype]) throw invalid(`${entryName} is smaller than its ${numel} ${dtype} elements`);
      const span = viewSpan(ref.shape, ref.stride);
      if (span > 0 && ref.offset + span > numel) throw invalid(`tensor "${tensorName}" reaches past the end of its storage`);
      let base = bases.get(key);
      if (base === undefined) {
        try {
          base = (await zip.readLocalFileHeaderPromise(entry, { minimal: true })).fileDataStart;
        } catch (error) {
          throw invalid(`the local header of ${entryName} is damaged (${(error as Error).message})`);
        }
        if (base + entry.uncompressedSize > size) throw invalid(`${entryName} lies past the end of the file (the file is truncated)`);
        bases.set(key, base);
      }
      tensors.push({
        info: { name: tensorName, dtype, shape: ref.shape, file: name },
        location: { file, base, dtype, offset: ref.offset, shape: ref.shape, stride: ref.stride },
      });
    }
    return tensors;
  } finally {
    zip?.close();
  }
}

async function readWhole(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Uint8Array> {
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return new Uint8Array(Buffer.concat(chunks));
}
