/**
 * A `.safetensors` file: an 8-byte little-endian header length, a JSON header
 * (`name: { dtype, shape, data_offsets: [begin, end] }`, offsets relative to
 * the end of the header, plus an ignored `__metadata__`), then raw
 * little-endian tensor bytes. Only the header is read here; every size and
 * offset in it is checked against the file's real size so a truncated
 * download fails here with one line, not later with garbage.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../../../src/errors.js';
import type { SourceDtype } from '../weights.js';
import { ITEM_SIZE, contiguousStrides, product } from './dtypes.js';
import { ShardFile } from './shard-file.js';
import type { ShardTensor } from './torch-zip.js';

/** The format's own limit on the JSON header. */
const MAX_HEADER_BYTES = 100_000_000;

const DTYPES: Record<string, SourceDtype> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

export async function readSafetensors(filePath: string): Promise<ShardTensor[]> {
  const name = path.basename(filePath);
  const invalid = (why: string) => new UserInputError(`${name} is not a readable safetensors file: ${why}.`, 'checkpoint_invalid');
  const handle = await open(filePath, 'r');
  let header: unknown;
  let dataStart: number;
  let size: number;
  try {
    size = (await handle.stat()).size;
    const prefix = Buffer.alloc(8);
    if (size < 8 || (await handle.read(prefix, 0, 8, 0)).bytesRead < 8) throw invalid('it is shorter than its 8-byte header length');
    const length = prefix.readBigUInt64LE(0);
    if (length > BigInt(MAX_HEADER_BYTES)) throw invalid(`its header length (${length} bytes) is implausible`);
    if (8n + length > BigInt(size)) throw invalid(`its ${length}-byte header runs past the end of the ${size}-byte file (truncated?)`);
    const json = Buffer.alloc(Number(length));
    const { bytesRead } = await handle.read(json, 0, json.length, 8);
    if (bytesRead < json.length) throw invalid('its header is cut short');
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
    } catch {
      throw invalid('its header is not valid JSON');
    }
    dataStart = 8 + json.length;
  } finally {
    await handle.close();
  }

  if (!header || typeof header !== 'object' || Array.isArray(header)) throw invalid('its header is not a JSON object');
  const dataBytes = size - dataStart;
  const file = new ShardFile(filePath, size);
  const tensors: (ShardTensor & { begin: number })[] = [];
  for (const [tensorName, raw] of Object.entries(header)) {
    if (tensorName === '__metadata__') continue;
    const bad = (why: string) => invalid(`tensor "${tensorName}" ${why}`);
    if (!raw || typeof raw !== 'object') throw bad('has no description');
    const { dtype: code, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    const dtype = typeof code === 'string' ? DTYPES[code] : undefined;
    if (!dtype) throw bad(`has dtype ${JSON.stringify(code)}, which is not supported`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad('has a malformed shape');
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad('has malformed data_offsets');
    }
    const [begin, end] = offsets as number[];
    if (begin > end || end > dataBytes) throw bad(`lies past the end of the file (bytes ${begin}-${end} of ${dataBytes}; truncated?)`);
    if (end - begin !== product(shape) * ITEM_SIZE[dtype]) throw bad(`has ${end - begin} bytes for shape [${shape.join(',')}] in ${code}`);
    tensors.push({
      begin,
      info: { name: tensorName, dtype, shape: [...shape], file: name },
      location: { file, base: dataStart + begin, dtype, offset: 0, shape: [...shape], stride: contiguousStrides(shape) },
    });
  }
  // JSON key order is the writer's choice; file order is what "names" promises.
  tensors.sort((a, b) => a.begin - b.begin);
  return tensors.map(({ info, location }) => ({ info, location }));
}
