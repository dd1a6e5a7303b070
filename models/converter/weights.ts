/**
 * What the graph builders read weights through. A checkpoint reader
 * (checkpoint/) implements it over `.bin` / safetensors files; tests implement
 * it over arrays in memory. Tensors are read one at a time, on demand, so a
 * conversion never holds the whole model.
 */
import { UserInputError } from '../../src/errors.js';

/** Element types found in the published checkpoints (and what they may grow to). */
export type SourceDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export interface TensorInfo {
  name: string;
  dtype: SourceDtype;
  shape: number[];
  /** The file it lives in (for messages). */
  file: string;
}

export interface WeightSource {
  /** Every tensor name, in file order. */
  readonly names: readonly string[];
  info(name: string): TensorInfo | undefined;
  /**
   * The tensor's values as contiguous row-major float32 (bfloat16 and float16
   * widened exactly; strides and storage offset applied). Throws a
   * UserInputError naming the file and tensor when it is missing or unreadable.
   */
  readFloat32(name: string): Promise<Float32Array>;
  close(): Promise<void>;
}

/** A tensor read and checked against the shape a graph needs. */
export interface Weight {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Distinct N of keys `${prefix}N.`; -1 when they have a gap. */
export function countIndexedKeys(names: readonly string[], prefix: string): number {
  const seen = new Set<number>();
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const rest = name.slice(prefix.length);
    const dot = rest.indexOf('.');
    const index = Number(dot < 0 ? rest : rest.slice(0, dot));
    if (Number.isInteger(index) && index >= 0) seen.add(index);
  }
  for (let i = 0; i < seen.size; i++) if (!seen.has(i)) return -1;
  return seen.size;
}

export const describeShape = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/** The tensor's info, or one clear error naming what is missing and where. */
export function requireInfo(source: WeightSource, name: string, what = 'checkpoint'): TensorInfo {
  const info = source.info(name);
  if (!info) throw new UserInputError(`The ${what} has no tensor "${name}".`, 'checkpoint_invalid');
  return info;
}

/**
 * Reads one tensor and checks its shape. `expected` may hold -1 for a
 * dimension the caller reads from the tensor itself.
 */
export async function readWeight(source: WeightSource, name: string, expected?: readonly number[], what = 'checkpoint'): Promise<Weight> {
  const info = requireInfo(source, name, what);
  if (expected) {
    const ok = expected.length === info.shape.length && expected.every((d, i) => d === -1 || d === info.shape[i]);
    if (!ok) {
      throw new UserInputError(
        `The ${what}'s tensor "${name}" in ${info.file} is ${describeShape(info.shape)}, expected ${describeShape(expected.map((d) => (d === -1 ? Number.NaN : d)))
          .replaceAll('NaN', '?')} (from config.json and the other weights).`,
        'checkpoint_invalid',
      );
    }
  }
  return { name, shape: [...info.shape], data: await source.readFloat32(name) };
}

/** A WeightSource over arrays in memory: for tests and for tensors the converter computes. */
export class MemoryWeights implements WeightSource {
  private readonly tensors = new Map<string, { shape: number[]; data: Float32Array; dtype: SourceDtype }>();

  constructor(entries: Record<string, { shape: number[]; data: Float32Array | number[]; dtype?: SourceDtype }> = {}) {
    for (const [name, t] of Object.entries(entries)) this.set(name, t.shape, t.data, t.dtype);
  }

  set(name: string, shape: number[], data: Float32Array | number[], dtype: SourceDtype = 'float32'): this {
    const count = shape.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`${name}: ${data.length} values for shape ${describeShape(shape)}`);
    this.tensors.set(name, { shape, data: Float32Array.from(data), dtype });
    return this;
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): TensorInfo | undefined {
    const t = this.tensors.get(name);
    return t && { name, dtype: t.dtype, shape: [...t.shape], file: '(memory)' };
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const t = this.tensors.get(name);
    if (!t) throw new UserInputError(`The checkpoint has no tensor "${name}".`, 'checkpoint_invalid');
    return t.data.slice();
  }

  async close(): Promise<void> {}
}
