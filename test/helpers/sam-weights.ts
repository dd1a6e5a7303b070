/**
 * A tiny SAM in the published checkpoint's layout (`model.visual_model.*`
 * names, PyTorch shapes), with fixed pseudo-random values: an image encoder
 * of width 32 and depth 2 (block 0 windowed at 14, block 1 global, 2 heads)
 * and a prompt encoder + mask decoder at SAM's real width 256 (MLP narrowed).
 * Scales keep activations near unit size and the relative-position terms
 * as large as the attention logits, so a wrong index or layout shows.
 */
import { writeFile } from 'node:fs/promises';
import { uniformValues } from '../../models/generator/bench-random.js';
import { MemoryWeights } from '../../models/converter/weights.js';

export interface TinySam {
  width: number;
  heads: number;
  mlp: number;
  windows: number[];
  decoderMlp: number;
}

export const TINY_SAM: TinySam = { width: 32, heads: 2, mlp: 128, windows: [14, 0], decoderMlp: 64 };

const GRID = 64;
const PATCH = 16;
const DIM = 256;
const MASK_TOKENS = 4;

export function tinySamWeights(s: TinySam = TINY_SAM, seed = 'sam-test'): MemoryWeights {
  const w = new MemoryWeights();
  const add = (name: string, shape: number[], std: number, mean = 0) => {
    const values = uniformValues(`${seed}/${name}`, shape.reduce((a, b) => a * b, 1), std);
    if (mean) values.forEach((v, i) => (values[i] = v + mean));
    w.set(name, shape, values);
  };
  const linear = (name: string, out: number, inDim: number) => {
    add(`${name}.weight`, [out, inDim], 1 / Math.sqrt(inDim));
    add(`${name}.bias`, [out], 0.1);
  };
  const norm = (name: string, dim: number) => {
    add(`${name}.weight`, [dim], 0.1, 1);
    add(`${name}.bias`, [dim], 0.1);
  };
  const C = s.width;
  const e = 'model.visual_model.image_encoder.';
  add(`${e}patch_embed.proj.weight`, [C, 3, PATCH, PATCH], 1 / Math.sqrt(3 * PATCH * PATCH));
  add(`${e}patch_embed.proj.bias`, [C], 0.1);
  add(`${e}pos_embed`, [1, GRID, GRID, C], 0.5);
  s.windows.forEach((window, i) => {
    const b = `${e}blocks.${i}.`;
    const rows = 2 * (window || GRID) - 1;
    norm(`${b}norm1`, C);
    linear(`${b}attn.qkv`, 3 * C, C);
    add(`${b}attn.rel_pos_h`, [rows, C / s.heads], 0.5);
    add(`${b}attn.rel_pos_w`, [rows, C / s.heads], 0.5);
    linear(`${b}attn.proj`, C, C);
    norm(`${b}norm2`, C);
    linear(`${b}mlp.lin1`, s.mlp, C);
    linear(`${b}mlp.lin2`, C, s.mlp);
  });
  add(`${e}neck.0.weight`, [DIM, C, 1, 1], 1 / Math.sqrt(C));
  norm(`${e}neck.1`, DIM);
  add(`${e}neck.2.weight`, [DIM, DIM, 3, 3], 1 / Math.sqrt(9 * DIM));
  norm(`${e}neck.3`, DIM);

  const p = 'model.visual_model.prompt_encoder.';
  add(`${p}pe_layer.positional_encoding_gaussian_matrix`, [2, DIM / 2], 1);
  add(`${p}no_mask_embed.weight`, [1, DIM], 0.5);
  for (let i = 0; i < 4; i++) add(`${p}point_embeddings.${i}.weight`, [1, DIM], 0.5); // unused by LISA
  const d = 'model.visual_model.mask_decoder.';
  add(`${d}iou_token.weight`, [1, DIM], 1);
  add(`${d}mask_tokens.weight`, [MASK_TOKENS, DIM], 1);
  const attention = (name: string, inner: number) => {
    for (const proj of ['q_proj', 'k_proj', 'v_proj']) linear(`${name}.${proj}`, inner, DIM);
    linear(`${name}.out_proj`, DIM, inner);
  };
  for (let i = 0; i < 2; i++) {
    const l = `${d}transformer.layers.${i}.`;
    attention(`${l}self_attn`, DIM);
    norm(`${l}norm1`, DIM);
    attention(`${l}cross_attn_token_to_image`, DIM / 2);
    norm(`${l}norm2`, DIM);
    linear(`${l}mlp.lin1`, s.decoderMlp, DIM);
    linear(`${l}mlp.lin2`, DIM, s.decoderMlp);
    norm(`${l}norm3`, DIM);
    norm(`${l}norm4`, DIM);
    attention(`${l}cross_attn_image_to_token`, DIM / 2);
  }
  attention(`${d}transformer.final_attn_token_to_image`, DIM / 2);
  norm(`${d}transformer.norm_final_attn`, DIM);
  add(`${d}output_upscaling.0.weight`, [DIM, DIM / 4, 2, 2], 1 / Math.sqrt(DIM));
  add(`${d}output_upscaling.0.bias`, [DIM / 4], 0.1);
  norm(`${d}output_upscaling.1`, DIM / 4);
  add(`${d}output_upscaling.3.weight`, [DIM / 4, DIM / 8, 2, 2], 1 / Math.sqrt(DIM / 4));
  add(`${d}output_upscaling.3.bias`, [DIM / 8], 0.1);
  const mlp = (name: string, out: number) => {
    linear(`${name}.layers.0`, DIM, DIM);
    linear(`${name}.layers.1`, DIM, DIM);
    linear(`${name}.layers.2`, out, DIM);
  };
  for (let i = 0; i < MASK_TOKENS; i++) mlp(`${d}output_hypernetworks_mlps.${i}`, DIM / 8);
  mlp(`${d}iou_prediction_head`, MASK_TOKENS);
  return w;
}

/** Named float32 tensors as `<base>.json` ({name: {shape, offset}}, offsets in values) + `<base>.bin`. */
export async function writeBundle(base: string, tensors: Record<string, { shape: number[]; data: Float32Array }>): Promise<void> {
  const index: Record<string, { shape: number[]; offset: number }> = {};
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    index[name] = { shape: t.shape, offset };
    offset += t.data.length;
  }
  const all = new Float32Array(offset);
  for (const [name, t] of Object.entries(tensors)) all.set(t.data, index[name]!.offset);
  await writeFile(`${base}.json`, JSON.stringify(index));
  await writeFile(`${base}.bin`, new Uint8Array(all.buffer));
}

export async function memoryBundle(base: string, source: MemoryWeights): Promise<void> {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const name of source.names) tensors[name] = { shape: source.info(name)!.shape, data: await source.readFloat32(name) };
  await writeBundle(base, tensors);
}
