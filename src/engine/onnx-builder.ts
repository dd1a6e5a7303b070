/**
 * Small helpers for building ONNX graphs with onnx-proto: the engine's own
 * small graphs (kv-device.ts), the converter and the demo pack generators.
 *
 * Everything here is deterministic: names come from counters, tensor data is
 * written little-endian through DataView (never platform byte order), and
 * protobufjs encodes fields in schema order, so the same calls always give
 * the same bytes.
 */
import onnxProto from 'onnx-proto';
import { floatToHalf } from './floats.js';

const { onnx } = onnxProto;

/** ONNX IR version 8 / opset 17: well inside what onnxruntime-node 1.30 accepts. */
export const IR_VERSION = 8;
export const OPSET = 17;

export type ElemType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8';
/** A dimension: a fixed size, or the name of a symbolic (dynamic) one. */
export type Dim = number | string;

const ELEM_TYPES: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
  uint8: onnx.TensorProto.DataType.UINT8,
};

export function onnxElemType(type: ElemType): number {
  return ELEM_TYPES[type];
}

const BYTES_PER_ELEMENT: Record<ElemType, number> = { float32: 4, float16: 2, int64: 8, int32: 4, bool: 1, uint8: 1 };

/** Little-endian raw bytes of tensor data, as TensorProto.raw_data wants them. */
export function encodeTensorData(type: ElemType, data: ArrayLike<number> | readonly bigint[] | BigInt64Array): Uint8Array {
  const bytes = new Uint8Array(data.length * BYTES_PER_ELEMENT[type]);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    switch (type) {
      case 'float32':
        view.setFloat32(i * 4, Number(v), true);
        break;
      case 'float16':
        view.setUint16(i * 2, floatToHalf(Number(v)), true);
        break;
      case 'int64':
        view.setBigInt64(i * 8, typeof v === 'bigint' ? v : BigInt(v), true);
        break;
      case 'int32':
        view.setInt32(i * 4, Number(v), true);
        break;
      case 'bool':
      case 'uint8':
        view.setUint8(i, Number(v));
        break;
    }
  }
  return bytes;
}

/**
 * An attribute value: plain numbers are INT(S), strings STRING; floats must
 * say so; `{ graph }` is a GRAPH attribute (a Loop or If body, complete when
 * the node is added).
 */
export type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { graph: GraphBuilder };

/** Marks a float attribute (a bare number would be written as an int). */
export function float(value: number): { float: number } {
  return { float: value };
}

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: ${value} is not an integer; wrap floats with float()`);
    return { name, type: T.INT, i: value };
  }
  if (typeof value === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: T.INTS, ints: value };
  if ('float' in value) return { name, type: T.FLOAT, f: value.float };
  if ('graph' in value) return { name, type: T.GRAPH, g: value.graph.toGraphProto() };
  return { name, type: T.FLOATS, floats: value.floats };
}

function valueInfo(name: string, type: ElemType, dims: readonly Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxElemType(type),
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * Collects the nodes, weights, inputs and outputs of one graph. Intermediate
 * tensor names are generated (`<op>_<n>`) unless given, so graph code reads as
 * a chain of calls: `const y = g.op('Relu', [x]);`.
 */
export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  protected readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  private counter = 0;

  /**
   * `namePrefix` starts every generated name: a subgraph's names then cannot
   * shadow the enclosing graph's, whose tensors it may use by name (outer scope).
   */
  constructor(
    readonly name: string,
    protected readonly namePrefix = '',
  ) {}

  /**
   * A graph to become a node's GRAPH attribute (a Loop or If body). Its nodes
   * may read this graph's tensors by name; its generated names are prefixed
   * with its own name so they never collide with this graph's.
   */
  subgraph(name: string): GraphBuilder {
    return new GraphBuilder(name, `${this.namePrefix}${name}/`);
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.name}: tensor name ${name} used twice`);
    this.names.add(name);
    return name;
  }

  protected fresh(hint: string): string {
    let name: string;
    do name = `${this.namePrefix}${hint}_${this.counter++}`;
    while (this.names.has(name));
    return this.claim(name);
  }

  /** Declares a graph input and returns its name. */
  input(name: string, type: ElemType, dims: readonly Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /**
   * Declares a graph output fed by `source`. The value is renamed through an
   * Identity node so that outputs keep their contract names whatever produced them.
   */
  output(name: string, source: string, type: ElemType, dims: readonly Dim[]): void {
    this.node('Identity', [source], {}, [name]);
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A weight / constant tensor; returns its name. */
  initializer(hint: string, type: ElemType, dims: readonly number[], data: ArrayLike<number> | readonly bigint[]): string {
    const count = dims.reduce((a, b) => a * b, 1);
    if (data.length !== count) throw new Error(`initializer ${hint}: ${data.length} values for shape [${dims.join(',')}]`);
    const name = this.fresh(hint);
    this.initializers.push({ name, dataType: onnxElemType(type), dims: [...dims], rawData: encodeTensorData(type, data) });
    return name;
  }

  /** An int64 constant (1-D by default; pass `[]` dims for a scalar). */
  int64(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer('i64', 'int64', dims, values);
  }

  /** A float32 constant (1-D by default; pass `[]` dims for a scalar). */
  float32(values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.initializer('f32', 'float32', dims, values);
  }

  /** Adds a node; returns its output names (generated unless `outputs` names them). */
  node(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outputs: readonly string[] | number = 1): string[] {
    return this.addNode('', opType, inputs, attrs, outputs);
  }

  /**
   * A node of ONNX Runtime's `com.microsoft` contrib operator set (fused
   * kernels such as GroupQueryAttention); declares that set on first use. An
   * empty string in `inputs` leaves an optional input out.
   */
  contribNode(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outputs: readonly string[] | number = 1): string[] {
    if (!this.extraOpsets.some((o) => o.domain === 'com.microsoft')) this.extraOpsets.push({ domain: 'com.microsoft', version: 1 });
    return this.addNode('com.microsoft', opType, inputs, attrs, outputs);
  }

  private addNode(domain: string, opType: string, inputs: readonly string[], attrs: Record<string, AttrValue>, outputs: readonly string[] | number): string[] {
    const outNames =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(opType.toLowerCase()))
        : outputs.map((o) => this.claim(o));
    for (const value of Object.values(attrs)) {
      // A body's operator sets must be imported by the model that holds it.
      if (typeof value === 'object' && 'graph' in value) {
        for (const opset of value.graph.extraOpsets) if (!this.extraOpsets.some((o) => o.domain === opset.domain)) this.extraOpsets.push(opset);
      }
    }
    this.nodes.push({
      name: `${this.namePrefix}${opType}_${this.nodes.length}`,
      ...(domain ? { domain } : {}),
      opType,
      input: [...inputs],
      output: outNames,
      attribute: Object.keys(attrs).map((key) => attribute(key, attrs[key]!)),
    });
    return outNames;
  }

  /** A single-output node; returns its output name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs)[0]!;
  }

  /** Casts to `type`, or returns `x` unchanged when `from` already is that type. */
  cast(x: string, from: ElemType, to: ElemType): string {
    return from === to ? x : this.op('Cast', [x], { to: onnxElemType(to) });
  }

  /** `x[..., start:end]` along one axis (Slice-13 takes its bounds as inputs). */
  slice(x: string, axis: number, start: number, end: number): string {
    return this.op('Slice', [x, this.int64([start]), this.int64([end]), this.int64([axis])]);
  }

  /** Unsqueeze-13 / Squeeze-13 take their axes as an input tensor. */
  unsqueeze(x: string, axes: readonly number[]): string {
    return this.op('Unsqueeze', [x, this.int64(axes)]);
  }

  squeeze(x: string, axes: readonly number[]): string {
    return this.op('Squeeze', [x, this.int64(axes)]);
  }

  reshape(x: string, shape: readonly number[]): string {
    return this.op('Reshape', [x, this.int64(shape)]);
  }

  /** Operator sets beyond the default one (e.g. `{ domain: 'com.microsoft', version: 1 }` for contrib ops). */
  protected readonly extraOpsets: { domain: string; version: number }[] = [];

  /** This graph as a GraphProto (a model's main graph, or a node's GRAPH attribute). */
  toGraphProto(): onnxProto.onnx.IGraphProto {
    return { name: this.name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs };
  }

  /** The serialised ModelProto. */
  toBytes(docString = ''): Uint8Array {
    const model = onnx.ModelProto.create({
      irVersion: IR_VERSION,
      opsetImport: [{ domain: '', version: OPSET }, ...this.extraOpsets],
      producerName: 'lisa-bot',
      producerVersion: '1',
      docString,
      graph: this.toGraphProto(),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}
