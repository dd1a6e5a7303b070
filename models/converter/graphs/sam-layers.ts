/**
 * The layers SAM's two graphs share, over a WeightGraph, with weights read
 * from the checkpoint one tensor at a time (read, checked, stored, dropped).
 *
 * Arithmetic runs in the layer set's compute type (the pack dtype, or float32
 * for SAM's neck), except what float16 cannot hold well: LayerNorm statistics
 * and softmax always run in float32, as PyTorch does inside its half kernels.
 */
import { float } from '../../../src/engine/onnx-builder.js';
import type { FloatType, WeightGraph } from '../weight-graph.js';
import { readWeight } from '../weights.js';
import { type BuildContext, sourceBytes } from './context.js';
import { transpose2d } from './layers.js';

export class SamLayers {
  readonly g: WeightGraph;

  constructor(
    private readonly ctx: BuildContext,
    /** Prepended to every tensor name this set reads. */
    readonly prefix: string,
    /** The type activations and weights have here. */
    readonly type: FloatType,
  ) {
    this.g = ctx.graph;
  }

  /** Another layer set over the same graph (another prefix or compute type). */
  with(prefix: string, type: FloatType = this.type): SamLayers {
    return new SamLayers(this.ctx, prefix, type);
  }

  /** A checkpoint tensor's values, its shape checked; reported as consumed. */
  async read(name: string, shape: readonly number[]): Promise<Float32Array> {
    const full = this.prefix + name;
    const w = await readWeight(this.ctx.source, full, shape);
    this.ctx.onTensor?.(full, sourceBytes(this.ctx.source, full));
    return w.data;
  }

  /** A checkpoint tensor stored as an initializer of `dims` (same element count), in `type`. */
  async param(name: string, shape: readonly number[], dims: readonly number[] = shape, type: FloatType = this.type): Promise<string> {
    return this.g.weight(hint(name), type, dims, await this.read(name, shape));
  }

  /** A constant computed here (not read), in the compute type. */
  constant(name: string, dims: readonly number[], values: Float32Array): string {
    return this.g.weight(hint(name), this.type, dims, values);
  }

  scalar(value: number): string {
    return this.g.initializer('c', this.type, [], [value]);
  }

  /** nn.Linear: x @ W^T + b, W [out,in] transposed at conversion. */
  async linear(x: string, name: string, inDim: number, outDim: number, bias = true): Promise<string> {
    const w = transpose2d(await this.read(`${name}.weight`, [outDim, inDim]), outDim, inDim);
    const y = this.g.op('MatMul', [x, this.g.weight(hint(`${name}.weight`), this.type, [inDim, outDim], w)]);
    return bias ? this.g.op('Add', [y, await this.param(`${name}.bias`, [outDim])]) : y;
  }

  /** LayerNorm over the last axis with float32 statistics; weights kept in the compute type. */
  async layerNorm(x: string, name: string, dim: number, eps: number): Promise<string> {
    const g = this.g;
    const scale = g.cast(await this.param(`${name}.weight`, [dim]), this.type, 'float32');
    const bias = g.cast(await this.param(`${name}.bias`, [dim]), this.type, 'float32');
    const y = g.op('LayerNormalization', [g.cast(x, this.type, 'float32'), scale, bias], { axis: -1, epsilon: float(eps) });
    return g.cast(y, 'float32', this.type);
  }

  /** nn.GELU (exact): x * (1 + erf(x / sqrt 2)) / 2. */
  gelu(x: string): string {
    const g = this.g;
    const erf = g.op('Erf', [g.op('Div', [x, this.scalar(Math.SQRT2)])]);
    return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, this.scalar(1)])]), this.scalar(0.5)]);
  }

  /** Softmax over the last axis, in float32. */
  softmax(x: string): string {
    const g = this.g;
    return g.cast(g.op('Softmax', [g.cast(x, this.type, 'float32')], { axis: -1 }), 'float32', this.type);
  }

  /** An MLP of `layers` Linear layers (`${name}.layers.i`) with ReLU between them. */
  async mlp(x: string, name: string, layers: number, inDim: number, outDim: number): Promise<string> {
    let y = x;
    let width = inDim;
    for (let i = 0; i < layers; i++) {
      const out = i === layers - 1 ? outDim : (this.ctx.source.info(`${this.prefix}${name}.layers.${i}.weight`)?.shape[0] ?? -1);
      y = await this.linear(y, `${name}.layers.${i}`, width, out);
      if (i < layers - 1) y = this.g.op('Relu', [y]);
      width = out;
    }
    return y;
  }

  /** The graph boundary type (SAM's inputs and outputs are float32 in every pack). */
  toBoundary(x: string): string {
    return this.g.cast(x, this.type, 'float32');
  }

  fromBoundary(x: string): string {
    return this.g.cast(x, 'float32', this.type);
  }
}

const hint = (name: string) => name.replace(/\W/g, '_');
