/**
 * vision_encoder: CLIP's vision tower (from the CLIP checkpoint) up to the
 * hidden state LLaVA/LISA reads (hidden_states[mm_vision_select_layer]),
 * patch rows only, then LISA's mm_projector (from the LISA checkpoint).
 * pixel_values float32 [1,3,S,S] -> image_features dtype [1,I,H].
 */
import { UserInputError } from '../../../src/errors.js';
import { type WeightSource, countIndexedKeys, describeShape } from '../weights.js';
import type { TensorRef, VisionBuildContext } from './context.js';
import { GraphOps } from './layers.js';

export interface ClipVisionSpec {
  /** CLIP width (1024 for ViT-L/14; must equal LISA's mm_hidden_size). */
  hidden: number;
  intermediate: number;
  heads: number;
  patch: number;
  imageSize: number;
  layerNormEps: number;
  /** Encoder layers in the checkpoint. */
  layers: number;
  /** mm_vision_select_layer: an index into hidden_states (embeddings, then each layer's output); negative counts from the end. */
  selectLayer: number;
  /** mm_vision_select_feature: `patch` drops the CLS row (LISA), `cls_patch` keeps it. */
  selectFeature?: 'patch' | 'cls_patch';
  /** The LLM width mm_projector maps to. */
  outHidden: number;
  /** Key prefix of the tower in the CLIP checkpoint. */
  prefix?: string;
}

const DEFAULT_PREFIX = 'vision_model.';
export const MM_PROJECTOR = 'model.mm_projector';

function invalid(message: string): never {
  throw new UserInputError(message, 'checkpoint_invalid');
}

/** Encoder layers run: hidden_states[select] is the output of layer select - 1 (0 = the embeddings after pre_layrnorm). */
export function clipLayersUsed(spec: Pick<ClipVisionSpec, 'layers' | 'selectLayer'>): number {
  const used = spec.selectLayer < 0 ? spec.layers + 1 + spec.selectLayer : spec.selectLayer;
  if (!Number.isInteger(used) || used < 0 || used > spec.layers) {
    invalid(`config.json: mm_vision_select_layer ${spec.selectLayer} is outside the vision tower's ${spec.layers} layers.`);
  }
  return used;
}

export function clipImageTokens(spec: ClipVisionSpec): number {
  const grid = spec.imageSize / spec.patch;
  return grid * grid + (spec.selectFeature === 'cls_patch' ? 1 : 0);
}

function checkClipSpec(spec: ClipVisionSpec): void {
  if (spec.imageSize % spec.patch !== 0) invalid(`CLIP image_size ${spec.imageSize} is not a multiple of patch_size ${spec.patch}.`);
  if (spec.hidden % spec.heads !== 0) invalid(`CLIP hidden_size ${spec.hidden} is not a multiple of num_attention_heads ${spec.heads}.`);
}

/** The checkpoint tensors buildVisionEncoderGraph reads, in order (CLIP's, then LISA's projector). */
export function visionEncoderTensors(ctx: Pick<VisionBuildContext, 'source' | 'clipSource'>, spec: ClipVisionSpec): TensorRef[] {
  const p = spec.prefix ?? DEFAULT_PREFIX;
  const clip = [`${p}embeddings.patch_embedding.weight`, `${p}embeddings.class_embedding`, `${p}embeddings.position_embedding.weight`];
  clip.push(`${p}pre_layrnorm.weight`, `${p}pre_layrnorm.bias`);
  for (let i = 0; i < clipLayersUsed(spec); i++) {
    const l = `${p}encoder.layers.${i}`;
    for (const part of ['layer_norm1', 'self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.out_proj', 'layer_norm2', 'mlp.fc1', 'mlp.fc2']) {
      clip.push(`${l}.${part}.weight`, `${l}.${part}.bias`);
    }
  }
  return [...clip.map((name) => ({ source: ctx.clipSource, name })), ...['weight', 'bias'].map((s) => ({ source: ctx.source, name: `${MM_PROJECTOR}.${s}` }))];
}

export async function buildVisionEncoderGraph(ctx: VisionBuildContext, spec: ClipVisionSpec): Promise<void> {
  checkClipSpec(spec);
  const ops = new GraphOps(ctx);
  const { g, dt } = ops;
  const clip = ctx.clipSource;
  const p = spec.prefix ?? DEFAULT_PREFIX;
  const { hidden: C, patch: P, imageSize: S, heads, intermediate: M, layerNormEps: eps } = spec;
  const grid = S / P;
  const patches = grid * grid;
  const headDim = C / heads;

  // The patch conv (stride = kernel, no bias) as one MatMul over [1, patches, 3*P*P] rows: no float16 Conv needed.
  const pixels = ops.fromF32(g.input('pixel_values', 'float32', [1, 3, S, S]));
  const rows = g.reshape(g.op('Transpose', [g.reshape(pixels, [1, 3, grid, P, grid, P])], { perm: [0, 2, 4, 1, 3, 5] }), [1, patches, 3 * P * P]);
  const patchWeight = await ops.matrix(clip, `${p}embeddings.patch_embedding.weight`, C, 3 * P * P, [C, 3, P, P]);
  const cls = await ops.tensor(clip, `${p}embeddings.class_embedding`, [C], { dims: [1, 1, C] });
  const embeddings = g.op('Concat', [cls, g.op('MatMul', [rows, patchWeight])], { axis: 1 });
  const positions = await ops.tensor(clip, `${p}embeddings.position_embedding.weight`, [patches + 1, C]);
  let x = await ops.layerNorm(g.op('Add', [embeddings, positions]), clip, `${p}pre_layrnorm`, C, eps);

  for (let i = 0; i < clipLayersUsed(spec); i++) {
    const l = `${p}encoder.layers.${i}`;
    const h = await ops.layerNorm(x, clip, `${l}.layer_norm1`, C, eps);
    // CLIPAttention scales the query projection (bias included) before the product.
    const q = g.op('Mul', [await ops.linear(h, clip, `${l}.self_attn.q_proj`, C, C, true), ops.scalar(headDim ** -0.5)]);
    const k = await ops.linear(h, clip, `${l}.self_attn.k_proj`, C, C, true);
    const v = await ops.linear(h, clip, `${l}.self_attn.v_proj`, C, C, true);
    const scores = g.op('MatMul', [ops.splitHeads(q, heads, headDim), g.op('Transpose', [ops.splitHeads(k, heads, headDim)], { perm: [0, 1, 3, 2] })]);
    const attended = g.op('MatMul', [ops.softmax(ops.toF32(scores)), ops.splitHeads(v, heads, headDim)]);
    x = g.op('Add', [x, await ops.linear(ops.mergeHeads(attended, heads, headDim), clip, `${l}.self_attn.out_proj`, C, C, true)]);
    const m = await ops.layerNorm(x, clip, `${l}.layer_norm2`, C, eps);
    const up = ops.quickGelu(await ops.linear(m, clip, `${l}.mlp.fc1`, C, M, true));
    x = g.op('Add', [x, await ops.linear(up, clip, `${l}.mlp.fc2`, M, C, true)]);
  }
  // No post_layernorm: LISA reads the hidden state itself.
  const selected = spec.selectFeature === 'cls_patch' ? x : g.slice(x, 1, 1, patches + 1);
  const features = await ops.linear(selected, ctx.source, MM_PROJECTOR, C, spec.outHidden, true);
  g.output('image_features', features, dt, [1, clipImageTokens(spec), spec.outHidden]);
}

/** What CLIP's weights alone say about its sizes (heads and eps need config.json). */
export interface ClipShapes {
  hidden: number;
  patch: number;
  imageSize: number;
  layers: number;
  intermediate: number;
}

export function clipShapesOf(source: WeightSource, prefix = DEFAULT_PREFIX): ClipShapes {
  const get = (name: string, rank: number): number[] => {
    const info = source.info(`${prefix}${name}`);
    if (!info) invalid(`The vision tower has no tensor "${prefix}${name}" (expected a CLIP checkpoint such as openai/clip-vit-large-patch14).`);
    if (info.shape.length !== rank) invalid(`The vision tower's "${prefix}${name}" is ${describeShape(info.shape)}: expected ${rank} dimensions.`);
    return info.shape;
  };
  const [hidden, channels, patch, patchW] = get('embeddings.patch_embedding.weight', 4) as [number, number, number, number];
  if (channels !== 3 || patch !== patchW) invalid(`The vision tower's patch embedding is ${describeShape([hidden, channels, patch, patchW])}: expected [C,3,P,P].`);
  const positions = get('embeddings.position_embedding.weight', 2)[0]!;
  const grid = Math.round(Math.sqrt(positions - 1));
  if (grid * grid !== positions - 1) invalid(`The vision tower has ${positions} position embeddings: not a square grid plus CLS.`);
  const layers = countIndexedKeys(source.names, `${prefix}encoder.layers.`);
  if (layers <= 0) invalid(`The vision tower's layers (${prefix}encoder.layers.N.*) are ${layers < 0 ? 'not numbered 0..N-1' : 'missing'}.`);
  return { hidden, patch, imageSize: grid * patch, layers, intermediate: get('encoder.layers.0.mlp.fc1.weight', 2)[0]! };
}

/** Fails with one line when the CLIP config's sizes and its weights disagree. */
export function checkClipSpecAgainstWeights(spec: ClipVisionSpec, shapes: ClipShapes): void {
  const pairs: [string, number, number][] = [
    ['hidden_size', spec.hidden, shapes.hidden],
    ['patch_size', spec.patch, shapes.patch],
    ['image_size', spec.imageSize, shapes.imageSize],
    ['num_hidden_layers', spec.layers, shapes.layers],
    ['intermediate_size', spec.intermediate, shapes.intermediate],
  ];
  for (const [key, fromConfig, fromWeights] of pairs) {
    if (fromConfig !== fromWeights) invalid(`The vision tower's config.json gives ${key} = ${fromConfig}, but its weights give ${fromWeights}.`);
  }
}
