/**
 * The bench pack's language-side graphs: a CLIP-like vision encoder, token
 * embeddings, a LLaMA-like decoder with a real KV cache, and the [SEG]
 * projection. Fixed pseudo-random weights; shapes and costs, not answers,
 * are the point (design/TOY_MODEL.md, "The bench pack").
 *
 * The answer is fixed so that every measured turn does the same work: the
 * last `control` dims of every token embedding are zero except for the
 * tokens of the answer chain (`:` of "ASSISTANT:", the answer's tokens), which
 * carry a one-hot of their place in the chain. The decoder adds
 * `control @ CHAIN` to its logits, a +CHAIN_BIAS on the chain's next token,
 * which outweighs the random logits (about unit scale) by far. So greedy
 * decoding always writes the same answer, with its `[SEG]`, and stops at
 * `</s>` after `answerLength` tokens, while every step still runs every layer.
 */
import { type GraphSpec, SAM_PROMPT_DIM } from '../../src/engine/contract.js';
import { Net } from './bench-layers.js';
import type { BenchVocab } from './bench-tokenizer.js';
import { TOY_EOS } from './toy-tokenizer.js';
import type { PackDtype } from '../../src/engine/floats.js';
import { contractInputs, contractOutputs } from './contract-io.js';

export interface BenchDims {
  vocab: number;
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  /** SwiGLU intermediate size. */
  mlp: number;
  contextLength: number;
  imageTokens: number;
  clip: { size: number; patch: number; width: number; layers: number; heads: number; mlp: number };
}

export interface BenchLayout {
  dims: BenchDims;
  dtype: PackDtype;
  vocab: BenchVocab;
  seed: string;
  /** Token ids: `:`, the answer, `</s>`; chain[i] is followed by chain[i + 1]. */
  chain: number[];
}

const CHAIN_BIAS = 30;

export function benchLayout(dims: BenchDims, dtype: PackDtype, vocab: BenchVocab, seed: string): BenchLayout {
  const chain = [':', ...vocab.answer, TOY_EOS].map((t) => vocab.id(t));
  return { dims, dtype, vocab, seed, chain };
}

/** Dims [hidden - control, hidden) carry the chain one-hot; nothing else writes them. */
function controlDims(l: BenchLayout): number {
  return l.chain.length - 1;
}

/** CLIP ViT stand-in: patch conv, position embeddings, pre-norm blocks, then mm_projector to the LLM width. */
export function visionEncoderGraph(l: BenchLayout, spec: GraphSpec): Uint8Array {
  const { clip, hidden: H, imageTokens } = l.dims;
  const net = new Net('bench_vision_encoder', l.dtype, l.seed);
  const g = net.g;
  const side = clip.size / clip.patch;
  if (side * side !== imageTokens) throw new Error(`CLIP ${clip.size}/${clip.patch} does not give ${imageTokens} image tokens`);
  const [pixels] = contractInputs(g, spec);
  const patchWeight = net.weight('patch_embed.weight', [clip.width, 3, clip.patch, clip.patch], 1 / Math.sqrt(3 * clip.patch * clip.patch));
  const patches = g.op('Conv', [pixels, patchWeight], { kernel_shape: [clip.patch, clip.patch], strides: [clip.patch, clip.patch] });
  let x = g.op('Transpose', [g.reshape(patches, [1, clip.width, imageTokens])], { perm: [0, 2, 1] }); // [1,256,C]
  x = g.op('Add', [x, net.weight('position_embedding', [1, imageTokens, clip.width], 0.1)]);
  x = net.layerNorm(x, 'pre_layrnorm', clip.width);
  // LLaVA takes the second-to-last layer's features: the blocks here are the ones it runs.
  for (let i = 0; i < clip.layers; i++) {
    const h = net.layerNorm(x, `layers.${i}.norm1`, clip.width);
    x = g.op('Add', [x, net.multiHead(`layers.${i}.attn`, h, h, h, { dim: clip.width, inner: clip.width, heads: clip.heads })]);
    const m = net.layerNorm(x, `layers.${i}.norm2`, clip.width);
    const up = net.quickGelu(net.linear(m, `layers.${i}.fc1`, clip.width, clip.mlp));
    x = g.op('Add', [x, net.linear(up, `layers.${i}.fc2`, clip.mlp, clip.width, { std: 0.5 / Math.sqrt(clip.mlp) })]);
  }
  // Image rows get zero control dims (a mask after the projector), so they never steer the answer.
  const control = controlDims(l);
  const features = net.linear(x, 'mm_projector', clip.width, H);
  const zeroControl = g.float32([...new Array<number>(H - control).fill(1), ...new Array<number>(control).fill(0)], [H]);
  contractOutputs(g, spec, [g.cast(g.op('Mul', [features, zeroControl]), 'float32', l.dtype)]);
  return net.toBytes('lisa-bot bench pack: CLIP-like vision encoder (fixed random weights, not CLIP)');
}

/** Token embeddings: unit-scale random rows, control dims zero but for the answer chain's one-hot. */
export function embedTokensGraph(l: BenchLayout, spec: GraphSpec): Uint8Array {
  const { vocab: V, hidden: H } = l.dims;
  const net = new Net('bench_embed_tokens', l.dtype, l.seed);
  const g = net.g;
  const control = controlDims(l);
  const [ids] = contractInputs(g, spec);
  const table = net.randomValues('embed_tokens.weight', V * H, 1);
  for (let id = 0; id < V; id++) table.fill(0, id * H + H - control, (id + 1) * H);
  l.chain.slice(0, control).forEach((id, place) => (table[id * H + H - control + place] = 1));
  // Stored and gathered in the pack dtype, as an export does: no cast of the whole table.
  const weights = g.initializer('embed_tokens', l.dtype, [V, H], table);
  contractOutputs(g, spec, [g.op('Gather', [weights, ids], { axis: 0 })]);
  return net.toBytes('lisa-bot bench pack: token embeddings (fixed random weights)');
}

/**
 * LLaMA-like decoder: RMSNorm, rotary position embeddings from position_ids,
 * causal multi-head self-attention over past + new keys (present = concat),
 * SwiGLU MLP, final RMSNorm, lm_head over every position (as exports do).
 */
export function decoderGraph(l: BenchLayout, spec: GraphSpec): Uint8Array {
  const { hidden: H, layers: L, heads: K, headDim: D, mlp: M, vocab: V } = l.dims;
  const dt = l.dtype;
  const net = new Net('bench_decoder', dt, l.seed);
  const g = net.g;
  const [embedsIn, maskIn, positionsIn, ...pastIn] = contractInputs(g, spec) as [string, string, string, ...string[]];
  const past = Array.from({ length: L }, (_, i) => ({ key: pastIn[2 * i]!, value: pastIn[2 * i + 1]! }));
  const x0 = g.cast(embedsIn, dt, 'float32');

  // Rotary embeddings: angle = position * 10000^(-2i/D), halves rotated as in LLaMA.
  const invFreq = g.float32(Array.from({ length: D / 2 }, (_, i) => 10000 ** (-(2 * i) / D)), [1, 1, D / 2]);
  const freqs = g.op('Mul', [g.unsqueeze(g.cast(positionsIn, 'int64', 'float32'), [2]), invFreq]); // [1,T,D/2]
  const angles = g.op('Concat', [freqs, freqs], { axis: -1 }); // [1,T,D]
  const cos = g.unsqueeze(g.op('Cos', [angles]), [1]); // [1,1,T,D]
  const sin = g.unsqueeze(g.op('Sin', [angles]), [1]);
  const rope = (t: string) => {
    const rotated = g.op('Concat', [g.op('Neg', [g.slice(t, 3, D / 2, D)]), g.slice(t, 3, 0, D / 2)], { axis: 3 });
    return g.op('Add', [g.op('Mul', [t, cos]), g.op('Mul', [rotated, sin])]);
  };

  // Additive attention bias [T,S]: key s is visible to new token t when s <= P + t and attention_mask[s] != 0.
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  const total = g.squeeze(g.op('Shape', [maskIn], { start: 1, end: 2 }), [0]); // S = P + T
  const fresh = g.squeeze(g.op('Shape', [embedsIn], { start: 1, end: 2 }), [0]); // T
  const keyIndex = g.op('Range', [zero, total, one]);
  const queryIndex = g.unsqueeze(g.op('Range', [g.op('Sub', [total, fresh]), total, one]), [1]);
  const visible = g.op('And', [g.op('LessOrEqual', [keyIndex, queryIndex]), g.op('Greater', [g.squeeze(maskIn, [0]), zero])]);
  const bias = g.op('Where', [visible, net.scalar(0), net.scalar(-1e9)]);

  const residualStd = 1 / Math.sqrt(2 * L);
  const presents: { key: string; value: string }[] = [];
  let x = x0;
  for (let i = 0; i < L; i++) {
    const h = net.rmsNorm(x, `layers.${i}.input_layernorm`, H);
    const q = rope(net.splitHeads(net.linear(h, `layers.${i}.q_proj`, H, K * D, { bias: false }), K, D));
    const k = rope(net.splitHeads(net.linear(h, `layers.${i}.k_proj`, H, K * D, { bias: false }), K, D));
    const v = net.splitHeads(net.linear(h, `layers.${i}.v_proj`, H, K * D, { bias: false }), K, D);
    // Concat accepts the empty past of a first call (P = 0).
    const key = g.op('Concat', [past[i]!.key, g.cast(k, 'float32', dt)], { axis: 2 });
    const value = g.op('Concat', [past[i]!.value, g.cast(v, 'float32', dt)], { axis: 2 });
    presents.push({ key, value });
    const attended = net.attention(q, g.cast(key, dt, 'float32'), g.cast(value, dt, 'float32'), D, bias);
    const o = net.linear(net.mergeHeads(attended, K, D), `layers.${i}.o_proj`, K * D, H, { bias: false, std: residualStd / Math.sqrt(K * D) });
    x = g.op('Add', [x, o]);
    const m = net.rmsNorm(x, `layers.${i}.post_attention_layernorm`, H);
    const gate = net.silu(net.linear(m, `layers.${i}.gate_proj`, H, M, { bias: false }));
    const up = net.linear(m, `layers.${i}.up_proj`, H, M, { bias: false });
    x = g.op('Add', [x, net.linear(g.op('Mul', [gate, up]), `layers.${i}.down_proj`, M, H, { bias: false, std: residualStd / Math.sqrt(M) })]);
  }
  const last = net.rmsNorm(x, 'norm', H);
  const random = net.linear(last, 'lm_head', H, V, { bias: false });
  // The answer chain (see the header): control one-hot [1,T,C] @ [C,V].
  const control = controlDims(l);
  const chainTable = new Float32Array(control * V);
  for (let place = 0; place < control; place++) chainTable[place * V + l.chain[place + 1]!] = CHAIN_BIAS;
  const steer = g.op('MatMul', [g.slice(x0, 2, H - control, H), net.stored('chain', [control, V], chainTable)]);
  const logits = g.op('Add', [random, steer]);

  contractOutputs(g, spec, [g.cast(logits, 'float32', dt), g.cast(last, 'float32', dt), ...presents.flatMap((p) => [p.key, p.value])]);
  return net.toBytes('lisa-bot bench pack: LLaMA-like decoder with KV cache (fixed random weights, not LISA)');
}

/** text_hidden_fcs: Linear(H,H) -> ReLU -> Linear(H,256), float32 out. */
export function segProjectionGraph(l: BenchLayout, spec: GraphSpec): Uint8Array {
  const { hidden: H } = l.dims;
  const net = new Net('bench_seg_projection', l.dtype, l.seed);
  const g = net.g;
  const [segHidden] = contractInputs(g, spec);
  const hidden = g.cast(segHidden!, l.dtype, 'float32');
  const inner = g.op('Relu', [net.linear(hidden, 'text_hidden_fcs.0', H, H)]);
  contractOutputs(g, spec, [net.linear(inner, 'text_hidden_fcs.2', H, SAM_PROMPT_DIM)]);
  return net.toBytes('lisa-bot bench pack: [SEG] projection (fixed random weights)');
}
