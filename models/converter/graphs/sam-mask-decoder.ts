/**
 * `sam_mask_decoder`: image_embeddings f32 [1,256,64,64] + seg_embeddings
 * f32 [N,256] -> low_res_masks f32 [N,1,256,256], iou_predictions f32 [N,1].
 *
 * The prompt encoder as LISA calls it: each [SEG] embedding is one prompt's
 * only sparse token (no positional encoding), the dense prompt is
 * no_mask_embed everywhere, and the image PE is a constant computed here from
 * the gaussian matrix. Then SAM's MaskDecoder with multimask off: mask token
 * 0 and IoU 0 (the other mask tokens still take part in the attention).
 *
 * The image side is channels-last ([N, HW, C]); the 2x2 stride-2 transposed
 * convolutions are MatMuls (each output pixel gets exactly one kernel tap)
 * whose output is interleaved back into place, so it never leaves that layout.
 */
import type { BuildContext } from './context.js';
import { SamLayers } from './sam-layers.js';
import type { SamMaskDecoderSpec } from './sam-spec.js';
import { twoWayTensors, twoWayTransformer } from './sam-two-way.js';

const LN2D_EPS = 1e-6;

export async function buildSamMaskDecoderGraph(ctx: BuildContext, spec: SamMaskDecoderSpec): Promise<void> {
  const L = new SamLayers(ctx, spec.decoderPrefix, ctx.dtype);
  const prompt = L.with(spec.promptPrefix);
  const g = ctx.graph;
  const { dim, grid: G, maskTokens: M } = spec;
  const embeddings = L.fromBoundary(g.input('image_embeddings', 'float32', [1, dim, G, G]));
  const seg = L.fromBoundary(g.input('seg_embeddings', 'float32', ['num_seg', dim]));

  let keys = g.op('Transpose', [g.reshape(embeddings, [1, dim, G * G])], { perm: [0, 2, 1] });
  keys = g.op('Add', [keys, await prompt.param('no_mask_embed.weight', [1, dim])]);
  const gaussian = await prompt.read('pe_layer.positional_encoding_gaussian_matrix', [2, dim / 2]);
  const imagePe = prompt.constant('image_pe', [1, G * G, dim], denseImagePe(gaussian, G));

  // [N, 2 + M, dim]: iou token, mask tokens, the [SEG] embedding.
  const fixed = new Float32Array((1 + M) * dim);
  fixed.set(await L.read('iou_token.weight', [1, dim]));
  fixed.set(await L.read('mask_tokens.weight', [M, dim]), dim);
  const count = g.op('Shape', [seg], { start: 0, end: 1 });
  const outputTokens = g.op('Expand', [L.constant('output_tokens', [1, 1 + M, dim], fixed), g.op('Concat', [count, g.int64([1 + M, dim])], { axis: 0 })]);
  const tokens = g.op('Concat', [outputTokens, g.unsqueeze(seg, [1])], { axis: 1 });

  const out = await twoWayTransformer(L, spec, { queries: tokens, keys }, imagePe);

  const [up1, up2] = spec.upscale;
  let image = g.reshape(out.keys, [-1, G, G, dim]);
  image = await convTranspose2x2(L, image, 'output_upscaling.0', dim, up1, G);
  image = L.gelu(await L.layerNorm(image, 'output_upscaling.1', up1, LN2D_EPS));
  image = L.gelu(await convTranspose2x2(L, image, 'output_upscaling.3', up1, up2, 2 * G));
  const side = 4 * G;
  const pixels = g.reshape(image, [0, side * side, up2]);

  const hyper = await L.mlp(g.slice(out.queries, 1, 1, 2), 'output_hypernetworks_mlps.0', spec.hyperLayers, dim, up2); // [N,1,up2]
  const masks = g.op('MatMul', [pixels, g.op('Transpose', [hyper], { perm: [0, 2, 1] })]); // [N, side*side, 1]
  g.output('low_res_masks', L.toBoundary(g.reshape(masks, [-1, 1, side, side])), 'float32', ['num_seg', 1, side, side]);

  const iou = await L.mlp(g.slice(out.queries, 1, 0, 1), 'iou_prediction_head', spec.iouLayers, dim, M); // [N,1,M]
  g.output('iou_predictions', L.toBoundary(g.reshape(g.slice(iou, 2, 0, 1), [-1, 1])), 'float32', ['num_seg', 1]);
}

/**
 * ConvTranspose2d(kernel 2, stride 2) on channels-last [N, H, W, Cin]:
 * out[2i+a, 2j+b, co] = sum_ci x[i, j, ci] W[ci, co, a, b] + bias[co].
 */
async function convTranspose2x2(L: SamLayers, x: string, name: string, cin: number, cout: number, side: number): Promise<string> {
  const g = L.g;
  const taps = g.op('MatMul', [x, await L.param(`${name}.weight`, [cin, cout, 2, 2], [cin, cout * 4])]); // [N,H,W,cout*4]
  const interleaved = g.op('Transpose', [g.reshape(taps, [-1, side, side, cout, 2, 2])], { perm: [0, 1, 4, 2, 5, 3] }); // [N,H,2,W,2,cout]
  return g.op('Add', [g.reshape(interleaved, [-1, 2 * side, 2 * side, cout]), await L.param(`${name}.bias`, [cout])]);
}

/**
 * SAM's PositionEmbeddingRandom over the G x G grid, channels-last [G*G, 2F]:
 * cell centres scaled to [-1, 1], times the [2, F] gaussian matrix and 2 pi,
 * then sin and cos. x (the column) is the first coordinate.
 */
export function denseImagePe(gaussian: Float32Array, grid: number): Float32Array {
  const F = gaussian.length / 2;
  const out = new Float32Array(grid * grid * 2 * F);
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const u = (2 * (x + 0.5)) / grid - 1;
      const v = (2 * (y + 0.5)) / grid - 1;
      const row = (y * grid + x) * 2 * F;
      for (let j = 0; j < F; j++) {
        const angle = 2 * Math.PI * (u * gaussian[j]! + v * gaussian[F + j]!);
        out[row + j] = Math.sin(angle);
        out[row + F + j] = Math.cos(angle);
      }
    }
  }
  return out;
}

/** The checkpoint tensors the decoder graph reads (for progress totals). */
export function samMaskDecoderTensors(spec: SamMaskDecoderSpec): string[] {
  const d = spec.decoderPrefix;
  const mlp = (name: string, layers: number) => Array.from({ length: layers }, (_, i) => [`${d}${name}.layers.${i}.weight`, `${d}${name}.layers.${i}.bias`]).flat();
  return [
    `${spec.promptPrefix}no_mask_embed.weight`,
    `${spec.promptPrefix}pe_layer.positional_encoding_gaussian_matrix`,
    `${d}iou_token.weight`,
    `${d}mask_tokens.weight`,
    ...twoWayTensors(spec),
    ...['output_upscaling.0', 'output_upscaling.1', 'output_upscaling.3'].flatMap((n) => [`${d}${n}.weight`, `${d}${n}.bias`]),
    ...mlp('output_hypernetworks_mlps.0', spec.hyperLayers),
    ...mlp('iou_prediction_head', spec.iouLayers),
  ];
}
