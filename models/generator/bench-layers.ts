/**
 * Transformer building blocks for the bench pack, over GraphBuilder. They are
 * written the way a PyTorch -> ONNX export spells them (MatMul + Add linears,
 * Erf GELU, Pow/ReduceMean/Sqrt/Div RMSNorm, MatMul/Softmax attention), so
 * onnxruntime applies the same fusions it would to a real LISA export and the
 * timings mean something.
 *
 * Weights are stored in the pack dtype and cast to float32 before use; all
 * arithmetic is float32 (onnxruntime's CPU provider has few float16 kernels),
 * which is also how the toy pack does it.
 */
import { GraphBuilder, float } from '../../src/engine/onnx-builder.js';
import { uniformValues } from './bench-random.js';
import type { PackDtype } from '../../src/engine/floats.js';

export class Net {
  readonly g: GraphBuilder;

  constructor(
    name: string,
    readonly dtype: PackDtype,
    /** Part of every weight's stream name: another seed gives another pack. */
    private readonly seed: string,
  ) {
    this.g = new GraphBuilder(name);
  }

  /** A float32 view of values stored in the pack dtype. */
  stored(hint: string, dims: readonly number[], values: ArrayLike<number>): string {
    return this.g.cast(this.g.initializer(hint, this.dtype, dims, values), this.dtype, 'float32');
  }

  /** The fixed pseudo-random values of the weight `name` of this graph. */
  randomValues(name: string, count: number, std: number): Float32Array {
    return uniformValues(`${this.seed}/${this.g.name}/${name}`, count, std);
  }

  /** A fixed pseudo-random weight; `edit` may overwrite entries before it is stored. */
  weight(name: string, dims: readonly number[], std: number, edit?: (values: Float32Array) => void): string {
    const values = this.randomValues(name, dims.reduce((a, b) => a * b, 1), std);
    edit?.(values);
    return this.stored(name.replace(/\W/g, '_'), dims, values);
  }

  scalar(value: number): string {
    return this.g.float32([value], []);
  }

  /** x @ W (+ b), W of [inDim, outDim]; default init keeps activations at unit scale. */
  linear(x: string, name: string, inDim: number, outDim: number, options: { bias?: boolean; std?: number } = {}): string {
    const w = this.weight(`${name}.weight`, [inDim, outDim], options.std ?? 1 / Math.sqrt(inDim));
    const y = this.g.op('MatMul', [x, w]);
    return options.bias === false ? y : this.g.op('Add', [y, this.weight(`${name}.bias`, [outDim], 0.02)]);
  }

  /** LayerNormalization (opset 17) over the last axis, scale near 1. */
  layerNorm(x: string, name: string, dim: number): string {
    const scale = this.weight(`${name}.weight`, [dim], 0.05, (v) => v.forEach((s, i) => (v[i] = 1 + s)));
    const bias = this.weight(`${name}.bias`, [dim], 0.02);
    return this.g.op('LayerNormalization', [x, scale, bias], { axis: -1, epsilon: float(1e-5) });
  }

  /** LLaMA's RMSNorm as its export spells it. */
  rmsNorm(x: string, name: string, dim: number): string {
    const g = this.g;
    const meanSquare = g.op('ReduceMean', [g.op('Pow', [x, this.scalar(2)])], { axes: [-1], keepdims: 1 });
    const normed = g.op('Div', [x, g.op('Sqrt', [g.op('Add', [meanSquare, this.scalar(1e-6)])])]);
    const scale = this.weight(`${name}.weight`, [dim], 0.05, (v) => v.forEach((s, i) => (v[i] = 1 + s)));
    return g.op('Mul', [normed, scale]);
  }

  /** Exact (erf) GELU: SAM and the mask decoder. */
  gelu(x: string): string {
    const g = this.g;
    const erf = g.op('Erf', [g.op('Div', [x, this.scalar(Math.SQRT2)])]);
    return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, this.scalar(1)])]), this.scalar(0.5)]);
  }

  /** CLIP's quick_gelu: x * sigmoid(1.702 x). */
  quickGelu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [this.g.op('Mul', [x, this.scalar(1.702)])])]);
  }

  silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  /** [B, N, heads * d] -> [B, heads, N, d] (B and N may be dynamic). */
  splitHeads(x: string, heads: number, headDim: number): string {
    return this.g.op('Transpose', [this.g.reshape(x, [0, 0, heads, headDim])], { perm: [0, 2, 1, 3] });
  }

  /** [B, heads, N, d] -> [B, N, heads * d]. */
  mergeHeads(x: string, heads: number, headDim: number): string {
    return this.g.reshape(this.g.op('Transpose', [x], { perm: [0, 2, 1, 3] }), [0, 0, heads * headDim]);
  }

  /** softmax(q k^T / sqrt(d) + bias) v over [B, heads, N, d] tensors (broadcasting over B). */
  attention(q: string, k: string, v: string, headDim: number, bias?: string): string {
    const g = this.g;
    let scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), this.scalar(1 / Math.sqrt(headDim))]);
    if (bias) scores = g.op('Add', [scores, bias]);
    return g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
  }

  /** Multi-head attention with input and output projections: [B, Nq, dim] attends to [B, Nk, dim]. */
  multiHead(
    name: string,
    query: string,
    key: string,
    value: string,
    options: { dim: number; inner: number; heads: number; outputDim?: number },
  ): string {
    const { dim, inner, heads } = options;
    const d = inner / heads;
    const q = this.splitHeads(this.linear(query, `${name}.q`, dim, inner), heads, d);
    const k = this.splitHeads(this.linear(key, `${name}.k`, dim, inner), heads, d);
    const v = this.splitHeads(this.linear(value, `${name}.v`, dim, inner), heads, d);
    return this.linear(this.mergeHeads(this.attention(q, k, v, d), heads, d), `${name}.out`, inner, options.outputDim ?? dim);
  }

  toBytes(doc: string): Uint8Array {
    return this.g.toBytes(doc);
  }
}
