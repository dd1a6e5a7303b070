/**
 * LLaMA self-attention with a KV cache, as transformers 4.31 computes it:
 * rotate-half rotary embeddings from position_ids, keys and values cached
 * after the rotary (before repeating KV heads), scores masked causally within
 * the new positions and by attention_mask, softmax in float32.
 */
import type { WeightSource } from '../weights.js';
import type { GraphOps } from './layers.js';
import type { LlamaSpec } from './llama-spec.js';

/** torch.finfo(torch.float32).min: what masked scores end at in transformers (mask added, then clamped). */
const FLOAT32_MIN = -3.4028234663852886e38;

/**
 * inv_freq = 1 / theta^(2i/D), rounded at each step as torch's float32 arange,
 * pow and reciprocal round: positions reach thousands, where one ulp of a
 * frequency moves the angle visibly.
 */
export function rotaryInverseFrequencies(headDim: number, theta: number): number[] {
  const f = Math.fround;
  return Array.from({ length: headDim / 2 }, (_, i) => f(1 / f(f(theta) ** f((2 * i) / headDim))));
}

/** Applies the rotary embedding for `position_ids` to [1, heads, T, D] tensors. */
export type Rotary = (x: string) => string;

export function rotary(ops: GraphOps, positionIds: string, spec: LlamaSpec): Rotary {
  const g = ops.g;
  const D = spec.headDim;
  // angles [1, T, D]: position * inv_freq (float32, as cos_cached is computed), both halves alike.
  const invFreq = g.float32(rotaryInverseFrequencies(D, spec.ropeTheta), [D / 2]);
  const freqs = g.op('Mul', [g.unsqueeze(g.cast(positionIds, 'int64', 'float32'), [2]), invFreq]);
  const angles = g.op('Concat', [freqs, freqs], { axis: -1 });
  // cos/sin in the dtype, as transformers casts its cache to the query's dtype.
  const cos = ops.fromF32(g.unsqueeze(g.op('Cos', [angles]), [1]));
  const sin = ops.fromF32(g.unsqueeze(g.op('Sin', [angles]), [1]));
  return (x) => {
    const rotated = g.op('Concat', [g.op('Neg', [g.slice(x, 3, D / 2, D)]), g.slice(x, 3, 0, D / 2)], { axis: 3 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
}

/**
 * visible[t, s] (bool [T, S], S = P + T): key s is seen by new token t when
 * s <= P + t and attention_mask[s] == 1 (transformers masks every other value).
 */
export function attentionVisibility(ops: GraphOps, attentionMask: string, inputsEmbeds: string): string {
  const g = ops.g;
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  const total = g.squeeze(g.op('Shape', [attentionMask], { start: 1, end: 2 }), [0]);
  const fresh = g.squeeze(g.op('Shape', [inputsEmbeds], { start: 1, end: 2 }), [0]);
  const keyIndex = g.op('Range', [zero, total, one]);
  const queryIndex = g.unsqueeze(g.op('Range', [g.op('Sub', [total, fresh]), total, one]), [1]);
  const causal = g.op('LessOrEqual', [keyIndex, queryIndex]);
  return g.op('And', [causal, g.op('Equal', [g.squeeze(attentionMask, [0]), one])]);
}

export interface AttentionInputs {
  /** Normalised hidden states [1, T, H] (dtype). */
  h: string;
  pastKey: string;
  pastValue: string;
  rope: Rotary;
  visible: string;
}

/** [1, K, S, D] -> [1, K * n, S, D], each KV head repeated n times in place (repeat_kv). */
function repeatKv(ops: GraphOps, x: string, spec: LlamaSpec): string {
  const n = spec.heads / spec.kvHeads;
  if (n === 1) return x;
  const g = ops.g;
  const expanded = g.op('Expand', [g.unsqueeze(x, [2]), g.int64([1, spec.kvHeads, n, 1, 1])]);
  return g.reshape(expanded, [1, spec.heads, -1, spec.headDim]);
}

/** One layer's attention: returns its output [1, T, H] (before the residual) and the layer's present key/value. */
export async function llamaAttention(
  ops: GraphOps,
  source: WeightSource,
  layer: number,
  inputs: AttentionInputs,
  spec: LlamaSpec,
): Promise<{ out: string; key: string; value: string }> {
  const g = ops.g;
  const { hidden: H, heads: NH, kvHeads: K, headDim: D } = spec;
  const prefix = `model.layers.${layer}.self_attn`;
  const q = inputs.rope(ops.splitHeads(await ops.linear(inputs.h, source, `${prefix}.q_proj`, H, NH * D, false), NH, D));
  const k = inputs.rope(ops.splitHeads(await ops.linear(inputs.h, source, `${prefix}.k_proj`, H, K * D, false), K, D));
  const v = ops.splitHeads(await ops.linear(inputs.h, source, `${prefix}.v_proj`, H, K * D, false), K, D);
  // Concat accepts the zero-length past of a first call (P = 0).
  const key = g.op('Concat', [inputs.pastKey, k], { axis: 2 });
  const value = g.op('Concat', [inputs.pastValue, v], { axis: 2 });

  // Scores in the dtype (as transformers' matmul), scaled and softmaxed in float32.
  const scores = g.op('MatMul', [q, g.op('Transpose', [repeatKv(ops, key, spec)], { perm: [0, 1, 3, 2] })]);
  const scaled = g.op('Div', [ops.toF32(scores), ops.scalar(Math.sqrt(D), 'float32')]);
  const masked = g.op('Where', [inputs.visible, scaled, ops.scalar(FLOAT32_MIN, 'float32')]);
  const attended = g.op('MatMul', [ops.softmax(masked), repeatKv(ops, value, spec)]);
  const out = await ops.linear(ops.mergeHeads(attended, NH, D), source, `${prefix}.o_proj`, NH * D, H, false);
  return { out, key, value };
}
