/**
 * The language-side graphs of a `lisa-onnx/1` pack, built from LISA's
 * checkpoint weights: embed_tokens, decoder (LLaMA with a KV cache, as
 * transformers 4.31 computes it) and seg_projection (text_hidden_fcs).
 * Contract: models/README.md, "The graphs".
 */
import type { BuildContext, TensorRef } from './context.js';
import { GraphOps } from './layers.js';
import { attentionVisibility, llamaAttention, rotary } from './llama-attention.js';
import { type LlamaSpec, checkLlamaSpec } from './llama-spec.js';

export const EMBED_TOKENS = 'model.embed_tokens.weight';

/** input_ids int64 [1,T] -> inputs_embeds dtype [1,T,H]. */
export async function buildEmbedTokensGraph(ctx: BuildContext, spec: Pick<LlamaSpec, 'hidden' | 'vocab'>): Promise<void> {
  const ops = new GraphOps(ctx);
  const g = ops.g;
  const ids = g.input('input_ids', 'int64', [1, 'sequence']);
  const table = await ops.tensor(ctx.source, EMBED_TOKENS, [spec.vocab, spec.hidden]);
  g.output('inputs_embeds', g.op('Gather', [table, ids], { axis: 0 }), ops.dt, [1, 'sequence', spec.hidden]);
}

/** The checkpoint tensors buildDecoderGraph reads, in the order it reads them. */
export function decoderTensorNames(spec: Pick<LlamaSpec, 'layers'>): string[] {
  const names: string[] = [];
  for (let i = 0; i < spec.layers; i++) {
    const p = `model.layers.${i}`;
    names.push(
      `${p}.input_layernorm.weight`,
      ...['q', 'k', 'v', 'o'].map((x) => `${p}.self_attn.${x}_proj.weight`),
      `${p}.post_attention_layernorm.weight`,
      ...['gate', 'up', 'down'].map((x) => `${p}.mlp.${x}_proj.weight`),
    );
  }
  names.push('model.norm.weight', 'lm_head.weight');
  return names;
}

/**
 * inputs_embeds [1,T,H], attention_mask int64 [1,P+T], position_ids int64
 * [1,T], past_key_values.{i}.key/.value [1,K,P,D] -> logits [1,T,V],
 * last_hidden_state [1,T,H] (after the final norm), present.{i}.key/.value
 * [1,K,P+T,D]. P may be 0; T >= 1.
 */
export async function buildDecoderGraph(ctx: BuildContext, spec: LlamaSpec): Promise<void> {
  checkLlamaSpec(spec);
  const ops = new GraphOps(ctx);
  const { g, dt } = ops;
  const source = ctx.source;
  const { hidden: H, layers: L, kvHeads: K, headDim: D, intermediate: M, vocab: V } = spec;

  const embeds = g.input('inputs_embeds', dt, [1, 'sequence', H]);
  const attentionMask = g.input('attention_mask', 'int64', [1, 'total_sequence']);
  const positionIds = g.input('position_ids', 'int64', [1, 'sequence']);
  const past = Array.from({ length: L }, (_, i) => ({
    key: g.input(`past_key_values.${i}.key`, dt, [1, K, 'past_sequence', D]),
    value: g.input(`past_key_values.${i}.value`, dt, [1, K, 'past_sequence', D]),
  }));

  const rope = rotary(ops, positionIds, spec);
  const visible = attentionVisibility(ops, attentionMask, embeds);
  const presents: { key: string; value: string }[] = [];
  let x = embeds;
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    const h = await ops.rmsNorm(x, source, `${p}.input_layernorm.weight`, H, spec.rmsNormEps);
    const attention = await llamaAttention(ops, source, i, { h, pastKey: past[i]!.key, pastValue: past[i]!.value, rope, visible }, spec);
    presents.push({ key: attention.key, value: attention.value });
    x = g.op('Add', [x, attention.out]);
    const m = await ops.rmsNorm(x, source, `${p}.post_attention_layernorm.weight`, H, spec.rmsNormEps);
    const gate = ops.silu(await ops.linear(m, source, `${p}.mlp.gate_proj`, H, M, false));
    const up = await ops.linear(m, source, `${p}.mlp.up_proj`, H, M, false);
    x = g.op('Add', [x, await ops.linear(g.op('Mul', [gate, up]), source, `${p}.mlp.down_proj`, M, H, false)]);
  }
  const last = await ops.rmsNorm(x, source, 'model.norm.weight', H, spec.rmsNormEps);
  const logits = await ops.linear(last, source, 'lm_head', H, V, false);

  g.output('logits', logits, dt, [1, 'sequence', V]);
  g.output('last_hidden_state', last, dt, [1, 'sequence', H]);
  presents.forEach((present, i) => {
    g.output(`present.${i}.key`, present.key, dt, [1, K, 'total_sequence', D]);
    g.output(`present.${i}.value`, present.value, dt, [1, K, 'total_sequence', D]);
  });
}

export interface SegProjectionSpec {
  hidden: number;
  /** config out_dim (256: SAM's prompt width). */
  outDim: number;
}

export const SEG_PROJECTION_TENSORS = ['0.0.weight', '0.0.bias', '0.2.weight', '0.2.bias'].map((s) => `model.text_hidden_fcs.${s}`);

/** seg_hidden dtype [N,H] -> seg_embeddings float32 [N,out_dim]: Linear -> ReLU -> Linear. */
export async function buildSegProjectionGraph(ctx: BuildContext, spec: SegProjectionSpec): Promise<void> {
  const ops = new GraphOps(ctx);
  const { g, dt } = ops;
  const { hidden: H, outDim } = spec;
  const hidden = g.input('seg_hidden', dt, ['num_seg', H]);
  const inner = g.op('Relu', [await ops.linear(hidden, ctx.source, 'model.text_hidden_fcs.0.0', H, H, true)]);
  const out = await ops.linear(inner, ctx.source, 'model.text_hidden_fcs.0.2', H, outDim, true);
  g.output('seg_embeddings', ops.toF32(out), 'float32', ['num_seg', outDim]);
}

/** Every checkpoint tensor the language graphs read, per graph (for size estimates and progress). */
export function languageGraphTensors(ctx: Pick<BuildContext, 'source'>, spec: Pick<LlamaSpec, 'layers'>): Record<'embedTokens' | 'decoder' | 'segProjection', TensorRef[]> {
  const refs = (names: string[]) => names.map((name) => ({ source: ctx.source, name }));
  return { embedTokens: refs([EMBED_TOKENS]), decoder: refs(decoderTensorNames(spec)), segProjection: refs(SEG_PROJECTION_TENSORS) };
}
