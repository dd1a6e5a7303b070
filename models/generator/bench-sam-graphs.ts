/**
 * The bench pack's SAM graphs, float32 at their boundaries as the contract
 * says, with SAM's structure at a smaller width:
 *
 * sam_image_encoder: ViT-B-like — 16x16 patch conv to 64x64 tokens, absolute
 * position embeddings, pre-norm blocks with windowed attention (16x16
 * windows) and a GELU MLP, then the neck (1x1 conv to 256 channels,
 * LayerNorm2d, 3x3 depthwise conv, LayerNorm2d) to [1,256,64,64]. SAM's few
 * global-attention blocks are left out: at 4096 tokens their attention alone
 * would cost more than everything else here.
 *
 * sam_mask_decoder: SAM's two-way transformer layers (token self-attention,
 * tokens -> image and image -> tokens cross-attention, MLP; `depth` of them)
 * between the output tokens + the [SEG] prompt and the image embedding with
 * its positional encoding, and the final token -> image attention, then
 * two 2x transposed convs up to 256x256, the hypernetwork MLP giving one mask
 * per prompt, and the IoU head. The random part of each mask is squashed
 * (0.5 tanh) onto a fixed ellipse's logits, so masks look like one object —
 * what the postprocess, RLE and overlay really see — not noise.
 */
import { type GraphSpec, SAM_EMBEDDINGS_SHAPE, SAM_LOW_RES } from '../../src/engine/contract.js';
import { Net } from './bench-layers.js';
import { contractInputs, contractOutputs } from './contract-io.js';
import type { PackDtype } from '../../src/engine/floats.js';

export interface SamDims {
  size: number;
  patch: number;
  width: number;
  layers: number;
  heads: number;
  mlp: number;
  window: number;
  decoder: { depth: number; heads: number; inner: number; mlp: number; upscale: [number, number] };
}

const EMBED = SAM_EMBEDDINGS_SHAPE[1]!; // 256
const LOW_RES = SAM_LOW_RES;

export function samImageEncoderGraph(s: SamDims, dtype: PackDtype, seed: string, spec: GraphSpec): Uint8Array {
  const net = new Net('bench_sam_image_encoder', dtype, seed);
  const g = net.g;
  const C = s.width;
  const grid = s.size / s.patch; // 64
  const per = grid / s.window; // windows per side
  const [pixels] = contractInputs(g, spec);
  const patchWeight = net.weight('patch_embed.weight', [C, 3, s.patch, s.patch], 1 / Math.sqrt(3 * s.patch * s.patch));
  const patches = g.op('Conv', [pixels, patchWeight, net.weight('patch_embed.bias', [C], 0.02)], {
    kernel_shape: [s.patch, s.patch],
    strides: [s.patch, s.patch],
  });
  let x = g.op('Transpose', [patches], { perm: [0, 2, 3, 1] }); // [1,64,64,C]
  x = g.op('Add', [x, net.weight('pos_embed', [1, grid, grid, C], 0.1)]);
  const d = C / s.heads;
  for (let i = 0; i < s.layers; i++) {
    const h = net.layerNorm(x, `blocks.${i}.norm1`, C);
    // Window partition: [1,64,64,C] -> [windows, window*window, C].
    const windows = g.reshape(g.op('Transpose', [g.reshape(h, [1, per, s.window, per, s.window, C])], { perm: [0, 1, 3, 2, 4, 5] }), [
      per * per,
      s.window * s.window,
      C,
    ]);
    const qkv = g.op('Transpose', [g.reshape(net.linear(windows, `blocks.${i}.attn.qkv`, C, 3 * C), [0, 0, 3, s.heads, d])], {
      perm: [2, 0, 3, 1, 4],
    }); // [3, windows, heads, tokens, d]
    const [q, k, v] = g.node('Split', [qkv], { axis: 0 }, 3).map((t) => g.squeeze(t, [0]));
    const attended = net.linear(net.mergeHeads(net.attention(q!, k!, v!, d), s.heads, d), `blocks.${i}.attn.proj`, C, C);
    // Window reverse.
    const merged = g.reshape(
      g.op('Transpose', [g.reshape(attended, [1, per, per, s.window, s.window, C])], { perm: [0, 1, 3, 2, 4, 5] }),
      [1, grid, grid, C],
    );
    x = g.op('Add', [x, merged]);
    const m = net.gelu(net.linear(net.layerNorm(x, `blocks.${i}.norm2`, C), `blocks.${i}.mlp.lin1`, C, s.mlp));
    x = g.op('Add', [x, net.linear(m, `blocks.${i}.mlp.lin2`, s.mlp, C, { std: 0.5 / Math.sqrt(s.mlp) })]);
  }
  // Neck, channels-last where it is per pixel.
  let y = net.layerNorm(net.linear(x, 'neck.0', C, EMBED, { bias: false }), 'neck.1', EMBED);
  y = g.op('Transpose', [y], { perm: [0, 3, 1, 2] }); // [1,256,64,64]
  const depthwise = net.weight('neck.2.weight', [EMBED, 1, 3, 3], 1 / 3);
  y = g.op('Conv', [y, depthwise], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: EMBED });
  y = net.layerNorm(g.op('Transpose', [y], { perm: [0, 2, 3, 1] }), 'neck.3', EMBED);
  contractOutputs(g, spec, [g.op('Transpose', [y], { perm: [0, 3, 1, 2] })]);
  return net.toBytes('lisa-bot bench pack: ViT-like SAM image encoder (fixed random weights, not SAM)');
}

/** Logits of a fixed ellipse on the 256x256 low-res grid: about +-1 per cell from its edge, capped at +-8. */
function ellipseLogits(): Float32Array {
  const out = new Float32Array(LOW_RES * LOW_RES);
  // Upper left of the SAM frame, so it lies inside the image for any aspect ratio.
  const [cx, cy, rx, ry] = [0.3, 0.25, 0.15, 0.1];
  for (let y = 0; y < LOW_RES; y++) {
    for (let x = 0; x < LOW_RES; x++) {
      const dx = ((x + 0.5) / LOW_RES - cx) / rx;
      const dy = ((y + 0.5) / LOW_RES - cy) / ry;
      const cells = (1 - Math.hypot(dx, dy)) * Math.min(rx, ry) * LOW_RES;
      out[y * LOW_RES + x] = Math.max(-8, Math.min(8, cells));
    }
  }
  return out;
}

export function samMaskDecoderGraph(s: SamDims, dtype: PackDtype, seed: string, spec: GraphSpec): Uint8Array {
  const net = new Net('bench_sam_mask_decoder', dtype, seed);
  const g = net.g;
  const grid = s.size / s.patch;
  const tokensPerImage = grid * grid;
  const dec = s.decoder;
  const [up1, up2] = dec.upscale;
  const [embeddings, prompts] = contractInputs(g, spec) as [string, string];

  // Image side: [1,4096,256] + no_mask_embed (the dense prompt); random-Fourier positional encoding.
  let keys = g.op('Transpose', [g.reshape(embeddings, [1, EMBED, tokensPerImage])], { perm: [0, 2, 1] });
  keys = g.op('Add', [keys, net.weight('no_mask_embed', [EMBED], 0.1)]);
  const coords: number[] = [];
  for (let y = 0; y < grid; y++) for (let x = 0; x < grid; x++) coords.push(((x + 0.5) / grid) * 2 - 1, ((y + 0.5) / grid) * 2 - 1);
  const projected = g.op('Mul', [
    g.op('MatMul', [g.float32(coords, [tokensPerImage, 2]), net.weight('pe_layer.gaussian', [2, EMBED / 2], 1)]),
    net.scalar(2 * Math.PI),
  ]);
  const imagePe = g.unsqueeze(g.op('Concat', [g.op('Sin', [projected]), g.op('Cos', [projected])], { axis: 1 }), [0]); // [1,4096,256]

  // Token side: [N,3,256] = IoU token, mask token, the [SEG] prompt.
  const count = g.op('Shape', [prompts], { start: 0, end: 1 });
  const fixed = g.op('Expand', [
    net.weight('output_tokens', [1, 2, EMBED], 1),
    g.op('Concat', [count, g.int64([2, EMBED])], { axis: 0 }),
  ]);
  const tokenPe = g.op('Concat', [fixed, g.unsqueeze(prompts, [1])], { axis: 1 });
  let queries = tokenPe;
  const cross = (name: string, q: string, k: string, v: string) =>
    net.multiHead(name, q, k, v, { dim: EMBED, inner: dec.inner, heads: dec.heads });
  const withPe = (t: string, pe: string) => g.op('Add', [t, pe]);
  for (let i = 0; i < dec.depth; i++) {
    const p = `transformer.layers.${i}`;
    // SAM's first layer attends without adding the token PE (skip_first_layer_pe).
    const selfQ = i === 0 ? queries : withPe(queries, tokenPe);
    const self = net.multiHead(`${p}.self_attn`, selfQ, selfQ, queries, { dim: EMBED, inner: EMBED, heads: dec.heads });
    queries = net.layerNorm(i === 0 ? self : g.op('Add', [queries, self]), `${p}.norm1`, EMBED);
    const toImage = cross(`${p}.cross_attn_token_to_image`, withPe(queries, tokenPe), withPe(keys, imagePe), keys);
    queries = net.layerNorm(g.op('Add', [queries, toImage]), `${p}.norm2`, EMBED);
    const mlp = net.linear(g.op('Relu', [net.linear(queries, `${p}.mlp.lin1`, EMBED, dec.mlp)]), `${p}.mlp.lin2`, dec.mlp, EMBED);
    queries = net.layerNorm(g.op('Add', [queries, mlp]), `${p}.norm3`, EMBED);
    // Image tokens attend to the prompt tokens: from here on the image side is per prompt, [N,4096,256].
    const toTokens = cross(`${p}.cross_attn_image_to_token`, withPe(keys, imagePe), withPe(queries, tokenPe), queries);
    keys = net.layerNorm(g.op('Add', [keys, toTokens]), `${p}.norm4`, EMBED);
  }
  const last = cross('transformer.final_attn_token_to_image', withPe(queries, tokenPe), withPe(keys, imagePe), keys);
  queries = net.layerNorm(g.op('Add', [queries, last]), 'transformer.norm_final_attn', EMBED);

  // Upscaling: [N,256,64,64] -> [N,up1,128,128] -> [N,up2,256,256].
  const image = g.reshape(g.op('Transpose', [keys], { perm: [0, 2, 1] }), [-1, EMBED, grid, grid]);
  const convT = (x: string, name: string, cin: number, cout: number) =>
    g.op('ConvTranspose', [x, net.weight(`${name}.weight`, [cin, cout, 2, 2], 1 / Math.sqrt(cin)), net.weight(`${name}.bias`, [cout], 0.02)], {
      kernel_shape: [2, 2],
      strides: [2, 2],
    });
  let upscaled = convT(image, 'output_upscaling.0', EMBED, up1);
  upscaled = g.op('Transpose', [net.layerNorm(g.op('Transpose', [upscaled], { perm: [0, 2, 3, 1] }), 'output_upscaling.1', up1)], {
    perm: [0, 3, 1, 2],
  });
  upscaled = net.gelu(convT(net.gelu(upscaled), 'output_upscaling.3', up1, up2)); // [N,up2,256,256]

  const head = (x: string, name: string, out: number) => {
    const a = g.op('Relu', [net.linear(x, `${name}.layers.0`, EMBED, EMBED)]);
    return net.linear(g.op('Relu', [net.linear(a, `${name}.layers.1`, EMBED, EMBED)]), `${name}.layers.2`, EMBED, out);
  };
  const iouToken = g.squeeze(g.slice(queries, 1, 0, 1), [1]); // [N,256]
  const maskToken = g.slice(queries, 1, 1, 2); // [N,1,256]
  const hyper = head(maskToken, 'output_hypernetworks_mlps.0', up2); // [N,1,up2]
  const raw = g.op('MatMul', [hyper, g.reshape(upscaled, [0, up2, LOW_RES * LOW_RES])]); // [N,1,65536]
  const shaped = g.op('Add', [
    g.reshape(g.op('Mul', [g.op('Tanh', [raw]), net.scalar(0.5)]), [-1, 1, LOW_RES, LOW_RES]),
    net.stored('object_logits', [1, 1, LOW_RES, LOW_RES], ellipseLogits()),
  ]);
  contractOutputs(g, spec, [shaped, g.op('Sigmoid', [head(iouToken, 'iou_prediction_head', 1)])]);
  return net.toBytes('lisa-bot bench pack: SAM-like mask decoder (fixed random weights, not SAM)');
}
