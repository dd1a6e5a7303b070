/**
 * `sam_image_encoder`: pixel_values f32 [1,3,1024,1024] -> image_embeddings
 * f32 [1,256,64,64], SAM's ViT built from `model.visual_model.image_encoder.*`.
 *
 * Tokens stay channels-last ([1,G,G,C]) throughout, so the patch embedding,
 * the 1x1 neck conv and LayerNorm2d are MatMul / LayerNormalization on the
 * last axis; only the 3x3 neck conv needs channels-first. The patch
 * embedding is a MatMul over the flattened 16x16x3 patches: the same sums as
 * the strided conv, with its output already channels-last. The neck runs in
 * float32 whatever the pack dtype: SAM's own code lifts it to float32
 * because it overflows in half precision.
 */
import type { BuildContext } from './context.js';
import { transpose2d } from './layers.js';
import { SamLayers } from './sam-layers.js';
import { encoderBlock } from './sam-encoder-block.js';
import type { SamImageEncoderSpec } from './sam-spec.js';

const LN2D_EPS = 1e-6;

export async function buildSamImageEncoderGraph(ctx: BuildContext, spec: SamImageEncoderSpec): Promise<void> {
  const L = new SamLayers(ctx, spec.prefix, ctx.dtype);
  const g = ctx.graph;
  const { grid: G, patch: P, width: C, imageSize: S } = spec;
  const pixels = L.fromBoundary(g.input('pixel_values', 'float32', [1, 3, S, S]));

  // [1,3,G*P,G*P] -> [1,G,G,3*P*P] in the order of the conv weight's [C,3,P,P] rows.
  const patches = g.reshape(g.op('Transpose', [g.reshape(pixels, [1, 3, G, P, G, P])], { perm: [0, 2, 4, 1, 3, 5] }), [1, G, G, 3 * P * P]);
  const kernel = transpose2d(await L.read('patch_embed.proj.weight', [C, 3, P, P]), C, 3 * P * P);
  let x = g.op('MatMul', [patches, L.constant('patch_embed.proj.weight', [3 * P * P, C], kernel)]);
  x = g.op('Add', [x, await L.param('patch_embed.proj.bias', [C])]);
  x = g.op('Add', [x, await L.param('pos_embed', [1, G, G, C])]);

  for (let i = 0; i < spec.windows.length; i++) x = await encoderBlock(L, x, spec, i);

  const N = L.with(`${spec.prefix}neck.`, 'float32');
  const O = spec.outChannels;
  let y = g.cast(x, L.type, 'float32');
  // The 1x1 conv's [O,C,1,1] weight holds the same numbers as a Linear's [O,C].
  y = g.op('MatMul', [y, N.constant('neck.0.weight', [C, O], transpose2d(await N.read('0.weight', [O, C, 1, 1]), O, C))]);
  y = g.op('Transpose', [await N.layerNorm(y, '1', O, LN2D_EPS)], { perm: [0, 3, 1, 2] });
  y = g.op('Conv', [y, await N.param('2.weight', [O, O, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  y = await N.layerNorm(g.op('Transpose', [y], { perm: [0, 2, 3, 1] }), '3', O, LN2D_EPS);
  g.output('image_embeddings', g.op('Transpose', [y], { perm: [0, 3, 1, 2] }), 'float32', [1, O, G, G]);
}

/** The checkpoint tensors the encoder graph reads (for progress totals). */
export function samImageEncoderTensors(spec: SamImageEncoderSpec): string[] {
  const p = spec.prefix;
  const block = (i: number) =>
    ['norm1.weight', 'norm1.bias', 'attn.qkv.weight', 'attn.qkv.bias', 'attn.rel_pos_h', 'attn.rel_pos_w', 'attn.proj.weight', 'attn.proj.bias']
      .concat(['norm2.weight', 'norm2.bias', 'mlp.lin1.weight', 'mlp.lin1.bias', 'mlp.lin2.weight', 'mlp.lin2.bias'])
      .map((n) => `${p}blocks.${i}.${n}`);
  return [
    `${p}patch_embed.proj.weight`,
    `${p}patch_embed.proj.bias`,
    `${p}pos_embed`,
    ...spec.windows.flatMap((_, i) => block(i)),
    ...['neck.0.weight', 'neck.1.weight', 'neck.1.bias', 'neck.2.weight', 'neck.3.weight', 'neck.3.bias'].map((n) => p + n),
  ];
}
