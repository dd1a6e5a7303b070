/**
 * One weight file, read with positioned reads only: a tensor's bytes are read
 * from where they lie, so a 10 GB shard is never streamed or held whole. The
 * file is opened on the first read and kept open until close().
 */
import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../../../src/errors.js';
import type { SourceDtype } from '../weights.js';
import { ITEM_SIZE, isContiguous, product, toFloat32, viewSpan } from './dtypes.js';

/** fs reads are limited to 2 GiB each; a larger tensor (a 13B embedding in float32) is read in pieces. */
const MAX_READ = 1 << 30;

/**
 * How much of a non-contiguous view's storage span may be read at once, beyond
 * the view's own size: a transposed matrix spans exactly itself, but a strided
 * slice of a huge storage would not, and is read piece by piece instead.
 */
const SPAN_SLACK = 16 << 20;

export class ShardFile {
  private handle: Promise<FileHandle> | undefined;

  constructor(
    readonly filePath: string,
    /** The file's size when its header was read; reads past it mean the file was truncated. */
    readonly size: number,
  ) {}

  get name(): string {
    return path.basename(this.filePath);
  }

  /** `length` bytes at `position`, into a fresh buffer (so typed-array views on it are aligned). */
  async read(position: number, length: number): Promise<Uint8Array> {
    if (position < 0 || position + length > this.size) {
      throw new UserInputError(`${this.name} is truncated or corrupt: a tensor lies past its end (${this.size} bytes).`, 'checkpoint_invalid');
    }
    this.handle ??= open(this.filePath, 'r');
    const handle = await this.handle;
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(out, done, Math.min(MAX_READ, length - done), position + done);
      if (bytesRead === 0) {
        throw new UserInputError(`${this.name} is truncated: it ended while reading a tensor at byte ${position + done}.`, 'checkpoint_invalid');
      }
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle).close();
  }
}

/** Where a tensor's elements are: element (i, j, ...) of the view is storage element offset + i*stride[0] + j*stride[1] + ... */
export interface TensorLocation {
  file: ShardFile;
  /** Byte position of the storage's element 0 in the file. */
  base: number;
  dtype: SourceDtype;
  offset: number;
  shape: number[];
  stride: number[];
}

/** The tensor as contiguous row-major float32, reading only the bytes the view covers. */
/** Elements read and widened at a time. */
const CHUNK_ELEMENTS = 4 * 1024 * 1024;

export async function readTensor(t: TensorLocation): Promise<Float32Array> {
  const out = new Float32Array(product(t.shape));
  if (out.length > 0) await gather(t, t.offset, 0, out, 0);
  return out;
}

async function gather(t: TensorLocation, offset: number, dim: number, out: Float32Array, at: number): Promise<void> {
  const shape = t.shape.slice(dim);
  const stride = t.stride.slice(dim);
  const size = ITEM_SIZE[t.dtype];
  const count = product(shape);
  const span = viewSpan(shape, stride);
  if (isContiguous(shape, stride)) {
    // In pieces: a whole raw copy beside `out` (and its widened twin) would triple a big tensor's memory.
    for (let done = 0; done < count; done += CHUNK_ELEMENTS) {
      const n = Math.min(CHUNK_ELEMENTS, count - done);
      out.set(toFloat32(await t.file.read(t.base + (offset + done) * size, n * size), t.dtype), at + done);
    }
    return;
  }
  if ((span - count) * size <= SPAN_SLACK) {
    const values = toFloat32(await t.file.read(t.base + offset * size, span * size), t.dtype);
    pick(values, shape, stride, out, at);
    return;
  }
  const inner = count / shape[0];
  for (let i = 0; i < shape[0]; i++) await gather(t, offset + i * stride[0], dim + 1, out, at + i * inner);
}

/** Copies a strided view of `values` (offset 0) into `out` in row-major order. */
function pick(values: Float32Array, shape: number[], stride: number[], out: Float32Array, at: number): void {
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  const count = product(shape);
  let source = 0;
  for (let n = 0; n < count; n++) {
    out[at + n] = values[source];
    for (let d = rank - 1; d >= 0; d--) {
      index[d]++;
      source += stride[d];
      if (index[d] < shape[d]) break;
      source -= index[d] * stride[d];
      index[d] = 0;
    }
  }
}
