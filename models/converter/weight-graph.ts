/**
 * A GraphBuilder for graphs made from checkpoint weights. Weights are written
 * as they come — to the graph's external data file (`<graph>.onnx.data`) when
 * the graph is large, inline otherwise — so that building a 7B decoder never
 * holds more than the tensor at hand.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { floatToHalf } from '../../src/engine/floats.js';
import { type ElemType, GraphBuilder, onnxElemType } from '../../src/engine/onnx-builder.js';

const { onnx } = onnxProto;

export type FloatType = 'float32' | 'float16';

/** Graphs whose weights stay under this are written as one self-contained file. */
export const INLINE_WEIGHT_LIMIT = 128 * 1024 * 1024;

/** Offsets in the data file are aligned so that ONNX Runtime may map the file. */
const DATA_ALIGNMENT = 4096;

export interface WeightGraphOptions {
  /**
   * When set, weights go to this file (a sibling of the graph, named as the
   * graph's location will reference it); when absent, they are kept inline.
   */
  externalDataFile?: string;
}

export class WeightGraph extends GraphBuilder {
  private dataFd: number | undefined;
  private dataOffset = 0;
  /** Bytes of weights written so far (inline or external). */
  weightBytes = 0;

  constructor(
    name: string,
    private readonly options: WeightGraphOptions = {},
    /** For a subgraph: the model's main graph, which keeps every weight (written once, in its file). */
    private readonly root?: WeightGraph,
    namePrefix = '',
  ) {
    super(name, namePrefix);
  }

  /**
   * A Loop/If body whose weights go to the main graph (one copy in the file,
   * referenced from the body as outer-scope values); its nodes and small
   * constants stay in the body.
   */
  override subgraph(name: string): WeightGraph {
    return new WeightGraph(name, {}, this.root ?? this, `${this.namePrefix}${name}/`);
  }

  /** Declares the com.microsoft contrib operator set (fused kernels). */
  useContribOps(): void {
    if (!this.extraOpsets.some((o) => o.domain === 'com.microsoft')) this.extraOpsets.push({ domain: 'com.microsoft', version: 1 });
  }

  /**
   * A weight from float32 values, stored as `type` (float16 rounds to nearest
   * even). Returns the initializer's name.
   */
  weight(hint: string, type: FloatType, dims: readonly number[], values: Float32Array): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (values.length !== count) throw new Error(`weight ${hint}: ${values.length} values for shape [${dims.join(',')}]`);
    const bytes = type === 'float32' ? float32Bytes(values) : float16Bytes(values);
    return this.addRawInitializer(hint, type, dims, bytes);
  }

  /** A weight given as its little-endian bytes in `type` (e.g. MatMulNBits' packed uint8 codes). */
  rawWeight(hint: string, type: ElemType, dims: readonly number[], bytes: Uint8Array): string {
    return this.addRawInitializer(hint, type, dims, bytes);
  }

  private addRawInitializer(hint: string, type: ElemType, dims: readonly number[], bytes: Uint8Array): string {
    if (this.root) return this.root.addRawInitializer(hint, type, dims, bytes);
    const name = this.fresh(hint);
    this.weightBytes += bytes.byteLength;
    const file = this.options.externalDataFile;
    if (!file) {
      this.initializers.push({ name, dataType: onnxElemType(type), dims: [...dims], rawData: bytes });
      return name;
    }
    this.dataFd ??= openSync(file, 'w');
    const start = Math.ceil(this.dataOffset / DATA_ALIGNMENT) * DATA_ALIGNMENT;
    if (start > this.dataOffset) writeAll(this.dataFd, new Uint8Array(start - this.dataOffset), this.dataOffset);
    writeAll(this.dataFd, bytes, start);
    this.dataOffset = start + bytes.byteLength;
    this.initializers.push({
      name,
      dataType: onnxElemType(type),
      dims: [...dims],
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: 'location', value: path.basename(file) },
        { key: 'offset', value: String(start) },
        { key: 'length', value: String(bytes.byteLength) },
      ],
    });
    return name;
  }

  /** Closes the data file (if any) and returns the serialised graph. */
  finish(docString = ''): Uint8Array {
    if (this.dataFd !== undefined) {
      closeSync(this.dataFd);
      this.dataFd = undefined;
    }
    return this.toBytes(docString);
  }

  /** Closes the data file without serialising (on failure). */
  abandon(): void {
    if (this.dataFd !== undefined) closeSync(this.dataFd);
    this.dataFd = undefined;
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

/**
 * Little-endian float32 bytes (checked below), as a view: no copy of a tensor
 * that may be hundreds of MB. Inline weights keep the view, so builders hand
 * over arrays they no longer change.
 */
function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

function float16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = floatToHalf(values[i]!);
  return new Uint8Array(out.buffer);
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('lisa-bot converts checkpoints on little-endian hosts only');
