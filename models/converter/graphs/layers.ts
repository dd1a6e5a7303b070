/**
 * Building blocks shared by the LLaMA and CLIP graphs: checkpoint weights
 * read, checked and written one at a time, linears over pre-transposed
 * weights, and norms/softmax that keep their statistics in float32 whatever
 * the pack dtype (as transformers does for RMSNorm and LLaMA's softmax, and
 * as float16 needs for LayerNorm over 1024-wide rows).
 */
import { float } from '../../../src/engine/onnx-builder.js';
import { ACCURACY_LEVEL, quantizeBlockwise } from '../quantize.js';
import type { WeightGraph } from '../weight-graph.js';
import { type WeightSource, readWeight } from '../weights.js';
import type { PackDtype } from '../../../src/engine/floats.js';
import { type BuildContext, sourceBytes } from './context.js';

/** [rows, cols] row-major -> [cols, rows], in cache-sized tiles (7B matrices are 45M values). */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const tile = 64;
  for (let r0 = 0; r0 < rows; r0 += tile) {
    const r1 = Math.min(rows, r0 + tile);
    for (let c0 = 0; c0 < cols; c0 += tile) {
      const c1 = Math.min(cols, c0 + tile);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) out[c * rows + r] = data[base + c]!;
      }
    }
  }
  return out;
}

/**
 * A Linear's weight as stored: its initializers exist once, and `apply`
 * emits the product of an input with it into any graph (the main graph, or a
 * Loop body that references the main graph's initializers as outer-scope values).
 */
export type LinearWeight = (g: WeightGraph, x: string) => string;

/** Initializers already made, by checkpoint name: a second use reuses them instead of reading weights again. */
export interface WeightMemo {
  tensors: Map<string, string>;
  linears: Map<string, LinearWeight>;
}

export class GraphOps {
  readonly g: WeightGraph;
  readonly dt: PackDtype;

  constructor(
    private readonly ctx: BuildContext,
    readonly memo: WeightMemo = { tensors: new Map(), linears: new Map() },
  ) {
    this.g = ctx.graph;
    this.dt = ctx.dtype;
  }

  /**
   * The same ops emitting into `graph` (e.g. a Loop body), sharing this one's
   * weights: checkpoint tensors already stored are referenced, not read again.
   */
  inGraph(graph: WeightGraph): GraphOps {
    return new GraphOps({ ...this.ctx, graph }, this.memo);
  }

  /** A constant made once per memo under `key` (e.g. the rotary caches); later calls return the same initializer. */
  memoised(key: string, make: () => string): string {
    let name = this.memo.tensors.get(key);
    if (name === undefined) {
      name = make();
      this.memo.tensors.set(key, name);
    }
    return name;
  }

  /** A scalar constant in `type` (default: the pack dtype). */
  scalar(value: number, type: PackDtype = this.dt): string {
    return this.g.initializer(type === 'float32' ? 'f32' : 'f16', type, [], [value]);
  }

  /**
   * Reads a checkpoint tensor (shape checked), lets `store` turn it into
   * initializers, then reports it and lets it go.
   */
  async consume<T>(source: WeightSource, name: string, shape: readonly number[], store: (data: Float32Array) => T): Promise<T> {
    const weight = await readWeight(source, name, shape);
    const result = store(weight.data);
    this.ctx.onTensor?.(name, sourceBytes(source, name));
    return result;
  }

  /** A tensor stored as it is (optionally reshaped to `dims`), in `type`. */
  async tensor(source: WeightSource, name: string, shape: readonly number[], options: { dims?: readonly number[]; type?: PackDtype } = {}): Promise<string> {
    const type = options.type ?? this.dt;
    const dims = options.dims ?? shape;
    const key = `${name}:${type}[${dims.join(',')}]`;
    const known = this.memo.tensors.get(key);
    if (known !== undefined) return known;
    const stored = await this.consume(source, name, shape, (data) => this.g.weight(hint(name), type, dims, data));
    this.memo.tensors.set(key, stored);
    return stored;
  }

  /** A Linear weight [out, in] (or `shape`, flattening to that) stored as [in, out], ready for MatMul. */
  async matrix(source: WeightSource, name: string, outDim: number, inDim: number, shape: readonly number[] = [outDim, inDim]): Promise<string> {
    return this.consume(source, name, shape, (data) => this.g.weight(hint(name), this.dt, [inDim, outDim], transpose2d(data, outDim, inDim)));
  }

  /** `x @ W^T (+ b)` for the Linear `prefix` (`prefix.weight` [out, in], `prefix.bias` [out]). */
  async linear(x: string, source: WeightSource, prefix: string, inDim: number, outDim: number, bias: boolean): Promise<string> {
    const name = `${prefix}.weight`;
    let weight = this.memo.linears.get(name);
    if (!weight) {
      const data = await readWeight(source, name, [outDim, inDim]);
      weight = this.storeLinearWeight(hint(name), data.data, outDim, inDim);
      this.memo.linears.set(name, weight);
      this.ctx.onTensor?.(name, sourceBytes(source, name));
    }
    const y = weight(this.g, x);
    return bias ? this.g.op('Add', [y, await this.tensor(source, `${prefix}.bias`, [outDim])]) : y;
  }

  /**
   * Several bias-free Linears over the same input as one MatMul, their outputs
   * concatenated along the last axis in `parts` order (packed QKV, gate+up).
   */
  async linearPacked(x: string, source: WeightSource, parts: readonly { prefix: string; outDim: number }[], inDim: number): Promise<string> {
    const key = parts.map((p) => `${p.prefix}.weight`).join('+');
    let weight = this.memo.linears.get(key);
    if (!weight) {
      const outDim = parts.reduce((sum, p) => sum + p.outDim, 0);
      const packed = new Float32Array(outDim * inDim);
      let row = 0;
      for (const part of parts) {
        const name = `${part.prefix}.weight`;
        const data = await readWeight(source, name, [part.outDim, inDim]);
        packed.set(data.data, row * inDim);
        row += part.outDim;
        this.ctx.onTensor?.(name, sourceBytes(source, name));
      }
      weight = this.storeLinearWeight(hint(`${parts[0]!.prefix}_packed.weight`), packed, outDim, inDim);
      this.memo.linears.set(key, weight);
    }
    return weight(this.g, x);
  }

  /**
   * Stores a torch-layout weight `data` [outDim, inDim] (float32) and returns
   * how to multiply an input by its transpose: the one place a Linear's
   * weight becomes initializers and its product a node.
   */
  private storeLinearWeight(name: string, data: Float32Array, outDim: number, inDim: number): LinearWeight {
    const q = this.ctx.quantization;
    if (q) {
      // MatMulNBits takes the torch layout [out, in] as it is: blocks run along in.
      const packed = quantizeBlockwise(data, outDim, inDim, q, this.dt);
      const codes = this.g.rawWeight(`${name}_q${q.bits}`, 'uint8', [outDim, packed.kBlocks, packed.blobSize], packed.codes);
      const scales = this.g.weight(`${name}_scales`, this.dt, [outDim, packed.kBlocks], packed.scales);
      this.g.useContribOps();
      // No zero points: onnxruntime's default, 2^(bits-1), is the symmetric one.
      const attrs = { K: inDim, N: outDim, bits: q.bits, block_size: q.blockSize, accuracy_level: ACCURACY_LEVEL[q.bits] };
      return (g, x) => g.contribNode('MatMulNBits', [x, codes, scales], attrs)[0]!;
    }
    const w = this.g.weight(name, this.dt, [inDim, outDim], transpose2d(data, outDim, inDim));
    return (g, x) => g.op('MatMul', [x, w]);
  }

  toF32(x: string): string {
    return this.g.cast(x, this.dt, 'float32');
  }

  fromF32(x: string): string {
    return this.g.cast(x, 'float32', this.dt);
  }

  /**
   * LLaMA's RMSNorm as transformers 4.31 computes it: statistics in float32,
   * the normalised row cast back to the dtype, then times the weight in the
   * dtype. Spelled Pow/ReduceMean/Add/Sqrt/Div so onnxruntime can fuse it.
   */
  async rmsNorm(x: string, source: WeightSource, name: string, dim: number, eps: number): Promise<string> {
    const g = this.g;
    const x32 = this.toF32(x);
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [x32, this.scalar(2, 'float32')])], { axes: [-1], keepdims: 1 });
    const normed = g.op('Div', [x32, g.op('Sqrt', [g.op('Add', [meanSquare, this.scalar(eps, 'float32')])])]);
    return g.op('Mul', [this.fromF32(normed), await this.tensor(source, name, [dim])]);
  }

  /** LayerNorm over the last axis, computed in float32 (weights kept float32: they are tiny). */
  async layerNorm(x: string, source: WeightSource, prefix: string, dim: number, eps: number): Promise<string> {
    const scale = await this.tensor(source, `${prefix}.weight`, [dim], { type: 'float32' });
    const bias = await this.tensor(source, `${prefix}.bias`, [dim], { type: 'float32' });
    return this.fromF32(this.g.op('LayerNormalization', [this.toF32(x), scale, bias], { axis: -1, epsilon: float(eps) }));
  }

  /** Softmax over the last axis of float32 scores, back in the dtype. */
  softmax(scores32: string): string {
    return this.fromF32(this.g.op('Softmax', [scores32], { axis: -1 }));
  }

  /** [1, N, heads * d] -> [1, heads, N, d] (N dynamic). */
  splitHeads(x: string, heads: number, headDim: number): string {
    return this.g.op('Transpose', [this.g.reshape(x, [0, 0, heads, headDim])], { perm: [0, 2, 1, 3] });
  }

  /** [1, heads, N, d] -> [1, N, heads * d]. */
  mergeHeads(x: string, heads: number, headDim: number): string {
    return this.g.reshape(this.g.op('Transpose', [x], { perm: [0, 2, 1, 3] }), [0, 0, heads * headDim]);
  }

  silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  /** CLIP's quick_gelu: x * sigmoid(1.702 x). */
  quickGelu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [this.g.op('Mul', [x, this.scalar(1.702)])])]);
  }
}

/** An initializer name hint from a checkpoint key (`model.layers.0.mlp.up_proj.weight` -> `layers_0_mlp_up_proj`). */
function hint(name: string): string {
  return name.replace(/^model\./, '').replace(/\.weight$/, '').replace(/\W/g, '_');
}
