/**
 * SAM's sizes, read from the checkpoint's tensor shapes: no config file holds
 * them (LISA builds SAM ViT-H with constructor arguments). Every size a
 * builder uses comes from here, so a checkpoint that is not SAM-shaped fails
 * with one line before any graph is built, and the lead can print the spec.
 */
import { UserInputError } from '../../../src/errors.js';
import { type WeightSource, countIndexedKeys, describeShape } from '../weights.js';

export const SAM_ENCODER_PREFIX = 'model.visual_model.image_encoder.';
export const SAM_PROMPT_PREFIX = 'model.visual_model.prompt_encoder.';
export const SAM_DECODER_PREFIX = 'model.visual_model.mask_decoder.';

/**
 * SAM (and so LISA) builds its two-way transformer with 8 heads; the weights
 * cannot say (the head split is a reshape, not a tensor), hence a default.
 */
export const SAM_DECODER_HEADS = 8;

export interface SamImageEncoderSpec {
  prefix: string;
  /** Input side in pixels (grid * patch: 1024). */
  imageSize: number;
  patch: number;
  /** Tokens per side (pos_embed: 64). */
  grid: number;
  /** Embedding width C (patch_embed.proj.weight rows). */
  width: number;
  heads: number;
  /** rel_pos_h columns; heads = width / headDim. */
  headDim: number;
  /** lin1 rows (4 * width in SAM). */
  mlp: number;
  /** One entry per block: its attention window side, 0 for global attention. */
  windows: number[];
  /** Neck output channels (256). */
  outChannels: number;
}

export interface SamMaskDecoderSpec {
  promptPrefix: string;
  decoderPrefix: string;
  /** Transformer width (256): the prompt and image embedding channels. */
  dim: number;
  /** Image embedding side (64): the encoder's grid. */
  grid: number;
  /** Attention heads of every two-way attention (not in the weights: SAM_DECODER_HEADS). */
  heads: number;
  depth: number;
  mlp: number;
  /** q_proj rows of the self-attention and of the cross-attentions (dim / downsample rate). */
  selfInner: number;
  crossInner: number;
  /** iou_token + mask_tokens; LISA uses mask 0 only (multimask off). */
  maskTokens: number;
  /** Channels after each 2x transposed convolution (dim/4, dim/8). */
  upscale: [number, number];
  hyperLayers: number;
  iouLayers: number;
}

function invalid(message: string): never {
  throw new UserInputError(message, 'checkpoint_invalid');
}

function shapeOf(source: WeightSource, name: string, rank: number): number[] {
  const info = source.info(name);
  if (!info) invalid(`The checkpoint has no tensor "${name}", which SAM needs.`);
  if (info.shape.length !== rank) invalid(`The checkpoint's tensor "${name}" in ${info.file} is ${describeShape(info.shape)}; SAM's has ${rank} dimensions.`);
  return info.shape;
}

/** How many consecutive indices `${prefix}{0,1,...}.` the names hold (a gap is refused). */
export function countBlocks(source: WeightSource, prefix: string): number {
  const count = countIndexedKeys(source.names, prefix);
  if (count < 0) invalid(`The checkpoint's ${prefix}* indices have a gap.`);
  return count;
}

export function readSamImageEncoderSpec(source: WeightSource, prefix = SAM_ENCODER_PREFIX): SamImageEncoderSpec {
  const patchWeight = shapeOf(source, `${prefix}patch_embed.proj.weight`, 4);
  const [width, channels, patch, patchW] = patchWeight as [number, number, number, number];
  if (channels !== 3 || patch !== patchW) invalid(`SAM's patch_embed.proj.weight is ${describeShape(patchWeight)}; expected [C,3,P,P].`);
  const pos = shapeOf(source, `${prefix}pos_embed`, 4);
  const grid = pos[1]!;
  if (pos[0] !== 1 || pos[2] !== grid || pos[3] !== width) invalid(`SAM's pos_embed is ${describeShape(pos)}; expected [1,G,G,${width}].`);
  const depth = countBlocks(source, `${prefix}blocks.`);
  if (depth === 0) invalid(`The checkpoint has no SAM image-encoder blocks (${prefix}blocks.*).`);
  let headDim = 0;
  const windows: number[] = [];
  for (let i = 0; i < depth; i++) {
    const h = shapeOf(source, `${prefix}blocks.${i}.attn.rel_pos_h`, 2);
    const w = shapeOf(source, `${prefix}blocks.${i}.attn.rel_pos_w`, 2);
    const where = `SAM block ${i}'s rel_pos_h ${describeShape(h)} / rel_pos_w ${describeShape(w)}`;
    // Square windows only, and sizes that need no interpolation of the table (get_rel_pos resizes
    // only when the rows differ from 2 * side - 1, which these derived sizes never do).
    if (h[0] !== w[0] || h[1] !== w[1] || h[0]! % 2 !== 1) invalid(`${where}: expected two [2S-1,D] tables of the same shape.`);
    headDim ||= h[1]!;
    if (h[1] !== headDim) invalid(`${where}: head dimension ${h[1]} differs from block 0's ${headDim}.`);
    const side = (h[0]! + 1) / 2;
    if (side > grid) invalid(`${where}: a window of ${side} is larger than the ${grid}x${grid} token grid.`);
    windows.push(side === grid ? 0 : side);
  }
  if (width % headDim !== 0) invalid(`SAM's width ${width} is not a multiple of the head dimension ${headDim} (rel_pos_h columns).`);
  const mlp = shapeOf(source, `${prefix}blocks.0.mlp.lin1.weight`, 2)[0]!;
  const neck = shapeOf(source, `${prefix}neck.0.weight`, 4);
  return { prefix, imageSize: grid * patch, patch, grid, width, heads: width / headDim, headDim, mlp, windows, outChannels: neck[0]! };
}

export interface SamMaskDecoderOptions {
  heads?: number;
  /** Image embedding side; default: the image encoder's pos_embed grid. */
  grid?: number;
  promptPrefix?: string;
  decoderPrefix?: string;
  encoderPrefix?: string;
}

export function readSamMaskDecoderSpec(source: WeightSource, options: SamMaskDecoderOptions = {}): SamMaskDecoderSpec {
  const promptPrefix = options.promptPrefix ?? SAM_PROMPT_PREFIX;
  const decoderPrefix = options.decoderPrefix ?? SAM_DECODER_PREFIX;
  const heads = options.heads ?? SAM_DECODER_HEADS;
  const grid = options.grid ?? shapeOf(source, `${options.encoderPrefix ?? SAM_ENCODER_PREFIX}pos_embed`, 4)[1]!;
  const dim = shapeOf(source, `${decoderPrefix}iou_token.weight`, 2)[1]!;
  const maskTokens = shapeOf(source, `${decoderPrefix}mask_tokens.weight`, 2)[0]!;
  const t = `${decoderPrefix}transformer.`;
  const depth = countBlocks(source, `${t}layers.`);
  if (depth === 0) invalid(`The checkpoint has no SAM two-way transformer layers (${t}layers.*).`);
  const selfInner = shapeOf(source, `${t}layers.0.self_attn.q_proj.weight`, 2)[0]!;
  const crossInner = shapeOf(source, `${t}layers.0.cross_attn_token_to_image.q_proj.weight`, 2)[0]!;
  for (const inner of [selfInner, crossInner]) {
    if (inner % heads !== 0) invalid(`SAM's two-way attention width ${inner} (q_proj rows) does not split into ${heads} heads.`);
  }
  const mlp = shapeOf(source, `${t}layers.0.mlp.lin1.weight`, 2)[0]!;
  const up1 = shapeOf(source, `${decoderPrefix}output_upscaling.0.weight`, 4);
  const up2 = shapeOf(source, `${decoderPrefix}output_upscaling.3.weight`, 4);
  for (const w of [up1, up2]) {
    if (w[2] !== 2 || w[3] !== 2) invalid(`SAM's output_upscaling kernels are ${describeShape(w)}; only 2x2 (stride 2) is supported.`);
  }
  const hyperLayers = countBlocks(source, `${decoderPrefix}output_hypernetworks_mlps.0.layers.`);
  const iouLayers = countBlocks(source, `${decoderPrefix}iou_prediction_head.layers.`);
  if (hyperLayers === 0 || iouLayers === 0) invalid(`The checkpoint's SAM mask decoder lacks output_hypernetworks_mlps.0 or iou_prediction_head.`);
  return { promptPrefix, decoderPrefix, dim, grid, heads, depth, mlp, selfInner, crossInner, maskTokens, upscale: [up1[1]!, up2[1]!], hyperLayers, iouLayers };
}
