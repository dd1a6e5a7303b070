/**
 * SAM's two-way transformer: prompt tokens and image tokens attend to each
 * other in turn (token self-attention, token -> image, MLP, image -> token),
 * `depth` layers, then a last token -> image attention. LayerNorms are
 * nn.LayerNorm's default eps 1e-5; the MLPs use ReLU.
 */
import type { SamLayers } from './sam-layers.js';
import type { SamMaskDecoderSpec } from './sam-spec.js';

const LN_EPS = 1e-5;

export interface TwoWayState {
  /** [N, tokens, dim] */
  queries: string;
  /** [1 or N, HW, dim]: starts shared by every prompt (broadcast), per prompt after layer 0. */
  keys: string;
}

/**
 * SAM's Attention: projections to `inner` (dim / downsample rate), heads,
 * softmax(q k^T / sqrt(d)) v, projection back to dim. Inputs may differ in
 * batch (1 against N): MatMul broadcasts.
 */
async function attention(L: SamLayers, name: string, q: string, k: string, v: string, dim: number, inner: number, heads: number): Promise<string> {
  const g = L.g;
  const d = inner / heads;
  const split = async (x: string, proj: string) => g.op('Transpose', [g.reshape(await L.linear(x, `${name}.${proj}`, dim, inner), [0, 0, heads, d])], { perm: [0, 2, 1, 3] });
  const qh = await split(q, 'q_proj');
  const kh = await split(k, 'k_proj');
  const vh = await split(v, 'v_proj');
  const logits = g.op('Div', [g.op('MatMul', [qh, g.op('Transpose', [kh], { perm: [0, 1, 3, 2] })]), L.scalar(Math.sqrt(d))]);
  const out = g.op('MatMul', [L.softmax(logits), vh]); // [B, heads, Nq, d]
  const merged = g.reshape(g.op('Transpose', [out], { perm: [0, 2, 1, 3] }), [0, 0, inner]);
  return L.linear(merged, `${name}.out_proj`, inner, dim);
}

/** Runs the transformer; `tokenPe` is the tokens themselves (SAM's point_embedding), `imagePe` [1, HW, dim]. */
export async function twoWayTransformer(L: SamLayers, spec: SamMaskDecoderSpec, start: TwoWayState, imagePe: string): Promise<TwoWayState> {
  const g = L.g;
  const { dim, heads, selfInner, crossInner } = spec;
  const tokenPe = start.queries;
  let { queries, keys } = start;
  const add = (a: string, b: string) => g.op('Add', [a, b]);
  for (let i = 0; i < spec.depth; i++) {
    const p = `transformer.layers.${i}`;
    if (i === 0) {
      // skip_first_layer_pe: the first self-attention neither adds the PE nor keeps a residual.
      queries = await attention(L, `${p}.self_attn`, queries, queries, queries, dim, selfInner, heads);
    } else {
      const q = add(queries, tokenPe);
      queries = add(queries, await attention(L, `${p}.self_attn`, q, q, queries, dim, selfInner, heads));
    }
    queries = await L.layerNorm(queries, `${p}.norm1`, dim, LN_EPS);

    const toImage = await attention(L, `${p}.cross_attn_token_to_image`, add(queries, tokenPe), add(keys, imagePe), keys, dim, crossInner, heads);
    queries = await L.layerNorm(add(queries, toImage), `${p}.norm2`, dim, LN_EPS);

    const hidden = g.op('Relu', [await L.linear(queries, `${p}.mlp.lin1`, dim, spec.mlp)]);
    queries = await L.layerNorm(add(queries, await L.linear(hidden, `${p}.mlp.lin2`, spec.mlp, dim)), `${p}.norm3`, dim, LN_EPS);

    const keysPe = add(keys, imagePe);
    const toTokens = await attention(L, `${p}.cross_attn_image_to_token`, keysPe, add(queries, tokenPe), queries, dim, crossInner, heads);
    keys = await L.layerNorm(add(keys, toTokens), `${p}.norm4`, dim, LN_EPS);
  }
  const last = await attention(L, 'transformer.final_attn_token_to_image', add(queries, tokenPe), add(keys, imagePe), keys, dim, crossInner, heads);
  queries = await L.layerNorm(add(queries, last), 'transformer.norm_final_attn', dim, LN_EPS);
  return { queries, keys };
}

/** The checkpoint tensors of the transformer, as its builder reads them. */
export function twoWayTensors(spec: SamMaskDecoderSpec): string[] {
  const attn = (n: string) => ['q_proj', 'k_proj', 'v_proj', 'out_proj'].flatMap((p) => [`${n}.${p}.weight`, `${n}.${p}.bias`]);
  const norm = (n: string) => [`${n}.weight`, `${n}.bias`];
  const names: string[] = [];
  for (let i = 0; i < spec.depth; i++) {
    const p = `transformer.layers.${i}`;
    names.push(...attn(`${p}.self_attn`), ...norm(`${p}.norm1`), ...attn(`${p}.cross_attn_token_to_image`), ...norm(`${p}.norm2`));
    names.push(`${p}.mlp.lin1.weight`, `${p}.mlp.lin1.bias`, `${p}.mlp.lin2.weight`, `${p}.mlp.lin2.bias`, ...norm(`${p}.norm3`));
    names.push(...attn(`${p}.cross_attn_image_to_token`), ...norm(`${p}.norm4`));
  }
  names.push(...attn('transformer.final_attn_token_to_image'), ...norm('transformer.norm_final_attn'));
  return names.map((n) => spec.decoderPrefix + n);
}
