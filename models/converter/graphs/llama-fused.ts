/**
 * The decoder in the fused form onnxruntime-genai builds LLaMA in:
 * GroupQueryAttention (com.microsoft) with the rotary embedding inside it and
 * Q, K and V from one packed MatMul; SimplifiedLayerNormalization (RMSNorm,
 * statistics in float32) and SkipSimplifiedLayerNormalization (residual add
 * and the next RMSNorm in one kernel); gate and up from one MatMul; and the
 * greedy choice inside the graph, so only the chosen ids and the final-norm
 * hidden states of the scored rows come back (no logits).
 *
 * Contract (src/engine/contract.ts, form 'fused'): inputs_embeds [1,T,H],
 * attention_mask int64 [1,P+T] (all ones: GroupQueryAttention takes lengths,
 * not a mask), past_key_values.{i}.key|value [1,K,P,D], scored_rows int64 [1]
 * -> next_ids int64 [1,scored], last_hidden_state [1,scored,H],
 * present.{i}.key|value [1,K,P+T,D]. P may be 0, T >= 1, scored <= T.
 */
import { UserInputError } from '../../../src/errors.js';
import { float } from '../../../src/engine/onnx-builder.js';
import type { WeightSource } from '../weights.js';
import type { BuildContext } from './context.js';
import { GraphOps } from './layers.js';
import { rotaryInverseFrequencies } from './llama-attention.js';
import { type LlamaSpec, checkLlamaSpec } from './llama-spec.js';

export interface FusedStackInputs {
  /** Embedding rows [1, T, H] (dtype). */
  embeds: string;
  /** Per layer, the cache before this step: [1, K, P, D] each. */
  past: readonly { key: string; value: string }[];
  /** int32 [1]: P + T - 1, the index of the last position (GroupQueryAttention's seqlens_k). */
  seqlensK: string;
  /** int32 scalar: P + T. */
  totalSequenceLength: string;
  /** int64 [1]: how many of the last rows are scored (1 for a plain step). */
  scoredRows: string;
}

export interface FusedStackOutputs {
  /** int64 [1, scored]: the greedy choice after each scored row. */
  nextIds: string;
  /** [1, scored, H] (dtype): the final-norm hidden state of each scored row. */
  hidden: string;
  /** Per layer, the cache after this step: [1, K, P + T, D] each. */
  presents: { key: string; value: string }[];
}

/** What the fused decoder needs beyond LlamaSpec: how many positions the rotary caches cover. */
export interface FusedSpec extends LlamaSpec {
  /** config max_position_embeddings: rows of cos_cache / sin_cache. */
  maxPositions: number;
}

/** Refuses sizes onnxruntime's kernels cannot run, before anything is built. */
export function checkFusedSpec(spec: FusedSpec): void {
  if (spec.headDim % 16 !== 0) {
    // The CPU kernel refuses such head sizes at run time ("head_size shall be a multiple of 16").
    throw new UserInputError(
      `--decoder fused: onnxruntime's GroupQueryAttention needs a head size that is a multiple of 16; this checkpoint's is ${spec.headDim} (hidden_size / num_attention_heads). Convert with --decoder plain.`,
      'checkpoint_invalid',
    );
  }
}

/**
 * seqlens_k and total_sequence_length from an all-ones attention_mask
 * int64 [1, P+T], as GroupQueryAttention takes them.
 */
export function gqaLengths(ops: GraphOps, attentionMask: string): Pick<FusedStackInputs, 'seqlensK' | 'totalSequenceLength'> {
  const g = ops.g;
  const total = g.op('ReduceSum', [attentionMask, g.int64([1])], { keepdims: 0 });
  return {
    seqlensK: g.cast(g.op('Sub', [total, g.int64([1])]), 'int64', 'int32'),
    totalSequenceLength: g.cast(g.squeeze(g.op('Shape', [attentionMask], { start: 1, end: 2 }), [0]), 'int64', 'int32'),
  };
}

/**
 * cos/sin caches [maxPositions, D/2] in the dtype, from the same float32
 * inv_freq rounding as the plain graph (llama-attention.ts): angle rounded to
 * float32 as torch's einsum does, cos/sin in float32, then cast to the dtype
 * as transformers casts its cache. Made once per memo (a Loop body reuses them).
 */
function rotaryCaches(ops: GraphOps, spec: FusedSpec): { cos: string; sin: string } {
  const half = spec.headDim / 2;
  const invFreq = rotaryInverseFrequencies(spec.headDim, spec.ropeTheta);
  const table = (fn: (a: number) => number) => {
    const out = new Float32Array(spec.maxPositions * half);
    for (let p = 0; p < spec.maxPositions; p++) {
      for (let i = 0; i < half; i++) out[p * half + i] = fn(Math.fround(p * invFreq[i]!));
    }
    return out;
  };
  return {
    cos: ops.memoised('rotary.cos_cache', () => ops.g.weight('cos_cache', ops.dt, [spec.maxPositions, half], table(Math.cos))),
    sin: ops.memoised('rotary.sin_cache', () => ops.g.weight('sin_cache', ops.dt, [spec.maxPositions, half], table(Math.sin))),
  };
}

/**
 * The layer stack, final norm, lm_head and ArgMax, emitted into `ops`' graph.
 * Callable again with `ops.inGraph(body)` (same memo) to emit a second copy,
 * e.g. into an ONNX Loop body: every weight is then referenced, not re-read.
 */
export async function fusedDecoderStack(ops: GraphOps, source: WeightSource, spec: FusedSpec, inputs: FusedStackInputs): Promise<FusedStackOutputs> {
  const g = ops.g;
  const { hidden: H, layers: L, heads: NH, kvHeads: K, headDim: D, intermediate: M, rmsNormEps: eps } = spec;
  const epsilon = float(eps);
  const rope = rotaryCaches(ops, spec);
  const norm = async (name: string) => ops.tensor(source, name, [H]);
  /** Adds `x` to the residual and RMS-normalises the sum: [normed, sum]. */
  const skipNorm = async (x: string, residual: string, name: string): Promise<[string, string]> => {
    const out = g.contribNode('SkipSimplifiedLayerNormalization', [x, residual, await norm(name)], { epsilon }, 4);
    return [out[0]!, out[3]!];
  };

  let residual = inputs.embeds;
  // SimplifiedLayerNormalization is registered in the default domain (stash_type 1: float32 statistics).
  let h = g.op('SimplifiedLayerNormalization', [inputs.embeds, await norm('model.layers.0.input_layernorm.weight')], { axis: -1, epsilon, stash_type: 1 });
  let mlp = '';
  const presents: { key: string; value: string }[] = [];
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    if (i > 0) [h, residual] = await skipNorm(mlp, residual, `${p}.input_layernorm.weight`);
    const qkv = await ops.linearPacked(
      h,
      source,
      [
        { prefix: `${p}.self_attn.q_proj`, outDim: NH * D },
        { prefix: `${p}.self_attn.k_proj`, outDim: K * D },
        { prefix: `${p}.self_attn.v_proj`, outDim: K * D },
      ],
      H,
    );
    const [attended, key, value] = g.contribNode(
      'GroupQueryAttention',
      [qkv, '', '', inputs.past[i]!.key, inputs.past[i]!.value, inputs.seqlensK, inputs.totalSequenceLength, rope.cos, rope.sin],
      { num_heads: NH, kv_num_heads: K, do_rotary: 1, rotary_interleaved: 0 },
      3,
    );
    presents.push({ key: key!, value: value! });
    const attention = await ops.linear(attended!, source, `${p}.self_attn.o_proj`, NH * D, H, false);
    [h, residual] = await skipNorm(attention, residual, `${p}.post_attention_layernorm.weight`);
    const gateUp = await ops.linearPacked(h, source, [{ prefix: `${p}.mlp.gate_proj`, outDim: M }, { prefix: `${p}.mlp.up_proj`, outDim: M }], H);
    const [gate, up] = g.node('Split', [gateUp, g.int64([M, M])], { axis: -1 }, 2);
    mlp = await ops.linear(g.op('Mul', [ops.silu(gate!), up!]), source, `${p}.mlp.down_proj`, M, H, false);
  }
  // Only the scored rows go through the final norm and lm_head (a step scores 1 row of a long prefill).
  const start = g.op('Neg', [inputs.scoredRows]);
  const end = g.int64([Number.MAX_SAFE_INTEGER]);
  const axis = g.int64([1]);
  const lastRows = (x: string) => g.op('Slice', [x, start, end, axis]);
  const [hidden] = await skipNorm(lastRows(mlp), lastRows(residual), 'model.norm.weight');
  const logits = await ops.linear(hidden, source, 'lm_head', H, spec.vocab, false);
  // ArgMax keeps the first index on ties, as the plain path's argmax does.
  const nextIds = g.op('ArgMax', [logits], { axis: -1, keepdims: 0 });
  return { nextIds, hidden, presents };
}

/** The fused decoder graph: the contract's inputs and outputs around fusedDecoderStack. */
export async function buildFusedDecoderGraph(ctx: BuildContext, spec: FusedSpec): Promise<void> {
  checkLlamaSpec(spec);
  checkFusedSpec(spec);
  const ops = new GraphOps(ctx);
  const inputs = fusedDecoderInputs(ops, spec);
  const out = await fusedDecoderStack(ops, ctx.source, spec, inputs);
  fusedDecoderOutputs(ops, spec, out);
}

/** Declares the fused contract's inputs (llama-loop.ts adds its own after these). */
export function fusedDecoderInputs(ops: GraphOps, spec: FusedSpec): FusedStackInputs {
  const { g, dt } = ops;
  const { hidden: H, layers: L, kvHeads: K, headDim: D } = spec;
  const embeds = g.input('inputs_embeds', dt, [1, 'sequence', H]);
  const attentionMask = g.input('attention_mask', 'int64', [1, 'total_sequence']);
  const past = Array.from({ length: L }, (_, i) => ({
    key: g.input(`past_key_values.${i}.key`, dt, [1, K, 'past_sequence', D]),
    value: g.input(`past_key_values.${i}.value`, dt, [1, K, 'past_sequence', D]),
  }));
  const scoredRows = g.input('scored_rows', 'int64', [1]);
  return { embeds, past, scoredRows, ...gqaLengths(ops, attentionMask) };
}

/**
 * Declares the fused contract's outputs; `out.presents` may be a later cache
 * (after llama-loop.ts's Loop, longer than total_sequence: `presentLength` names its length).
 */
export function fusedDecoderOutputs(ops: GraphOps, spec: FusedSpec, out: FusedStackOutputs, presentLength = 'total_sequence'): void {
  const { g, dt } = ops;
  const { hidden: H, kvHeads: K, headDim: D } = spec;
  g.output('next_ids', out.nextIds, 'int64', [1, 'scored']);
  g.output('last_hidden_state', out.hidden, dt, [1, 'scored', H]);
  out.presents.forEach((present, i) => {
    g.output(`present.${i}.key`, present.key, dt, [1, K, presentLength, D]);
    g.output(`present.${i}.value`, present.value, dt, [1, K, presentLength, D]);
  });
}
