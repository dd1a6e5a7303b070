/**
 * The toy pack's language-side graphs: vision_encoder, embed_tokens, decoder
 * and seg_projection, with hand-set weights (see design/TOY_MODEL.md).
 *
 * Hidden layout (H = V + 8):
 *   [0, V)        identity: one-hot of the token id
 *   [V, V + 6)    colour: one axis per palette colour (TOY_PALETTE order)
 *   [V + 6, H)    spare: only image rows use it
 *
 * All arithmetic runs in float32. In float16 packs the inputs are cast to
 * float32 right away and outputs cast back at the end; weights are stored in
 * the pack dtype (as a real float16 export would) and cast up before use.
 */
import type { PackDtype } from '../../src/engine/floats.js';
import type { GraphSpec } from '../../src/engine/contract.js';
import { GraphBuilder, type ElemType } from '../../src/engine/onnx-builder.js';
import { contractInputs, contractOutputs } from './contract-io.js';
import { TOY_COLOUR_NAMES } from './toy-palette.js';
import { TOY_ANSWER_CHAIN, TOY_EOS, type ToyVocab } from './toy-tokenizer.js';


export const TOY_COLOURS = TOY_COLOUR_NAMES.length; // 6
const SPARE = 2;
/** KV cache: one layer, one head of 8 dims (6 colour + 2 zero). */
export const TOY_LAYERS = 1;
export const TOY_KV_HEADS = 1;
export const TOY_HEAD_DIM = TOY_COLOURS + SPARE;
export const TOY_CLIP_SIZE = 224;
export const TOY_IMAGE_TOKENS = 256;
const CLIP_PATCH = 14; // ViT-L/14: 224 / 14 = 16, 16 x 16 = 256 rows

export interface ToyLayout {
  dtype: PackDtype;
  vocab: ToyVocab;
  /** V: every token, added ones included. */
  vocabSize: number;
  /** H = V + 8. */
  hidden: number;
  colourOffset: number;
  spareOffset: number;
}

export function toyLayout(vocab: ToyVocab, dtype: PackDtype): ToyLayout {
  const V = vocab.tokens.length;
  return { dtype, vocab, vocabSize: V, hidden: V + TOY_COLOURS + SPARE, colourOffset: V, spareOffset: V + TOY_COLOURS };
}

/** A [rows, cols] weight, zero but for the given (row, col, value) entries. */
function sparseWeight(g: GraphBuilder, hint: string, type: ElemType, rows: number, cols: number, entries: [number, number, number][]): string {
  const data = new Float32Array(rows * cols);
  for (const [r, c, v] of entries) data[r * cols + c] = v;
  return g.initializer(hint, type, [rows, cols], data);
}

/**
 * CLIP stand-in: the mean RGB of each 14x14 patch, written into the spare
 * dims only. Image rows have zero identity and colour parts, so they never
 * change the answer or the mask; they are still distinct per image.
 */
export function visionEncoderGraph(l: ToyLayout, spec: GraphSpec): Uint8Array {
  const g = new GraphBuilder('toy_vision_encoder');
  const side = TOY_CLIP_SIZE / CLIP_PATCH;
  const [pixels] = contractInputs(g, spec);
  const pooled = g.op('AveragePool', [pixels], { kernel_shape: [CLIP_PATCH, CLIP_PATCH], strides: [CLIP_PATCH, CLIP_PATCH] });
  const rows = g.op('Transpose', [g.reshape(pooled, [1, 3, side * side])], { perm: [0, 2, 1] }); // [1,256,3]
  // R -> spare 0, G -> spare 1 (B unused): "mm_projector".
  const projector = sparseWeight(g, 'mm_projector', l.dtype, 3, l.hidden, [
    [0, l.spareOffset, 1],
    [1, l.spareOffset + 1, 1],
  ]);
  const features = g.op('MatMul', [rows, g.cast(projector, l.dtype, 'float32')]);
  contractOutputs(g, spec, [g.cast(features, 'float32', l.dtype)]);
  return g.toBytes('lisa-bot toy pack: CLIP stand-in (hand-set weights, not LISA)');
}

/** Token embeddings: identity one-hot, plus 1 on the colour axis for colour words. */
export function embedTokensGraph(l: ToyLayout, spec: GraphSpec): Uint8Array {
  const g = new GraphBuilder('toy_embed_tokens');
  const [ids] = contractInputs(g, spec);
  const entries: [number, number, number][] = [];
  for (let id = 0; id < l.vocabSize; id++) entries.push([id, id, 1]);
  TOY_COLOUR_NAMES.forEach((name, c) => entries.push([l.vocab.id(name), l.colourOffset + c, 1]));
  const table = sparseWeight(g, 'embed_tokens', l.dtype, l.vocabSize, l.hidden, entries);
  const embeds = g.op('Gather', [table, ids], { axis: 0 });
  contractOutputs(g, spec, [embeds]);
  return g.toBytes('lisa-bot toy pack: token embeddings (hand-set weights, not LISA)');
}

/**
 * One "layer". The KV cache keeps, per position, key = [colour part x
 * (position_id + 1), 0, 0]; value = the same. For each new token the hidden
 * colour part is the element-wise max of the keys it may attend to (causal
 * and attention_mask), so the largest colour axis is the colour named last:
 * position-weighted max rather than a decayed sum, which would underflow in
 * float16 (integers up to 2048 are exact in float16, positions stay < 1024).
 * The identity part passes through and feeds the next-token table.
 */
export function decoderGraph(l: ToyLayout, spec: GraphSpec): Uint8Array {
  const g = new GraphBuilder('toy_decoder');
  const { dtype: dt, vocabSize: V } = l;
  const D = TOY_HEAD_DIM;
  const [embedsIn, maskIn, positionsIn, pastKey, pastValue] = contractInputs(g, spec) as [string, string, string, string, string];

  const x = g.cast(embedsIn, dt, 'float32');
  const identity = g.slice(x, 2, 0, V); // [1,T,V]
  const colour = g.slice(x, 2, l.colourOffset, l.colourOffset + TOY_COLOURS); // [1,T,6]

  // New cache rows: colour x (position + 1), padded to D, as [1,1,T,D].
  const weight = g.op('Add', [g.cast(positionsIn, 'int64', 'float32'), g.float32([1], [])]); // [1,T]
  const keyColour = g.op('Mul', [colour, g.unsqueeze(weight, [2])]); // [1,T,6]
  const newRows = g.unsqueeze(g.op('Pad', [keyColour, g.int64([0, 0, 0, 0, 0, D - TOY_COLOURS])]), [1]);
  const newRowsDt = g.cast(newRows, 'float32', dt);
  // Concat accepts the zero-length past of the first call (P = 0).
  const presentKey = g.op('Concat', [pastKey, newRowsDt], { axis: 2 }); // [1,1,S,D], S = P + T
  const presentValue = g.op('Concat', [pastValue, newRowsDt], { axis: 2 });

  // allowed[t, s] = s <= P + t and attention_mask[s] != 0, as float [T,S,1].
  const zero = g.int64([0], []);
  const one = g.int64([1], []);
  const total = g.squeeze(g.op('Shape', [presentKey], { start: 2, end: 3 }), [0]); // S
  const fresh = g.squeeze(g.op('Shape', [embedsIn], { start: 1, end: 2 }), [0]); // T
  const past = g.op('Sub', [total, fresh]); // P
  const keyIndex = g.op('Range', [zero, total, one]); // [S]
  const queryIndex = g.unsqueeze(g.op('Range', [past, total, one]), [1]); // [T,1]
  const causal = g.op('LessOrEqual', [keyIndex, queryIndex]); // [T,S]
  const attended = g.op('Greater', [g.squeeze(maskIn, [0]), zero]); // [S]
  const allowed = g.unsqueeze(g.cast(g.op('And', [causal, attended]), 'bool', 'float32'), [2]); // [T,S,1]

  // Keys are >= 0, so multiplying the disallowed ones by 0 masks them for the max.
  // Peak memory is T*S*6 floats: 25 MB for a full 1024-token prefill.
  const keys = g.slice(g.reshape(g.cast(presentKey, dt, 'float32'), [1, -1, D]), 2, 0, TOY_COLOURS); // [1,S,6]
  const latest = g.op('ReduceMax', [g.op('Mul', [allowed, keys])], { axes: [1], keepdims: 0 }); // [T,6]
  const colourPart = g.op('Pad', [g.unsqueeze(latest, [0]), g.int64([0, 0, 0, 0, 0, SPARE])]); // [1,T,8]
  const hidden = g.op('Concat', [identity, colourPart], { axis: 2 }); // [1,T,H]

  // logits = identity @ next-token table: each token's row is one-hot on its successor.
  const next = new Map<number, number>();
  for (let i = 0; i + 1 < TOY_ANSWER_CHAIN.length; i++) {
    next.set(l.vocab.id(TOY_ANSWER_CHAIN[i]!), l.vocab.id(TOY_ANSWER_CHAIN[i + 1]!));
  }
  const eos = l.vocab.id(TOY_EOS);
  const entries: [number, number, number][] = [];
  for (let id = 0; id < V; id++) entries.push([id, next.get(id) ?? eos, 1]);
  const table = sparseWeight(g, 'lm_head', dt, V, V, entries);
  const logits = g.op('MatMul', [identity, g.cast(table, dt, 'float32')]); // [1,T,V]

  contractOutputs(g, spec, [g.cast(logits, 'float32', dt), g.cast(hidden, 'float32', dt), presentKey, presentValue]);
  return g.toBytes('lisa-bot toy pack: one-layer decoder (hand-set weights, not LISA)');
}

/** text_hidden_fcs stand-in: keeps the colour part in dims 0..5 of a 256-d float32 prompt. */
export function segProjectionGraph(l: ToyLayout, spec: GraphSpec): Uint8Array {
  const g = new GraphBuilder('toy_seg_projection');
  const [hidden] = contractInputs(g, spec);
  const entries: [number, number, number][] = TOY_COLOUR_NAMES.map((_, c) => [l.colourOffset + c, c, 1]);
  const fc = sparseWeight(g, 'text_hidden_fcs', l.dtype, l.hidden, 256, entries);
  const prompt = g.op('MatMul', [g.cast(hidden, l.dtype, 'float32'), g.cast(fc, l.dtype, 'float32')]);
  contractOutputs(g, spec, [prompt]);
  return g.toBytes('lisa-bot toy pack: [SEG] projection (hand-set weights, not LISA)');
}
