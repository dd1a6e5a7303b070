/**
 * What the converter reads from a checkpoint's JSON files, checked: LISA's
 * config.json (LLaMA sizes, LISA's multimodal keys), and the CLIP tower's
 * config.json and preprocessor_config.json. Every size comes from these files
 * and is then checked against the weights themselves (convert.ts); nothing is
 * hard-coded, so LISA-7B and LISA-13B convert alike.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { UserInputError } from '../../src/errors.js';

const positive = z.number().int().positive();

const lisaConfigSchema = z.looseObject({
  hidden_size: positive,
  intermediate_size: positive,
  num_hidden_layers: positive,
  num_attention_heads: positive,
  num_key_value_heads: positive.optional(),
  rms_norm_eps: z.number().positive(),
  max_position_embeddings: positive,
  vocab_size: positive,
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.unknown().optional(),
  hidden_act: z.string().optional(),
  mm_hidden_size: positive,
  mm_vision_select_layer: z.number().int().default(-2),
  mm_vision_select_feature: z.string().default('patch'),
  mm_use_im_start_end: z.boolean().default(true),
  out_dim: positive.default(256),
  vision_tower: z.string().optional(),
  mm_vision_tower: z.string().optional(),
});

export type LisaConfig = z.infer<typeof lisaConfigSchema>;

const clipVisionSchema = z.looseObject({
  hidden_size: positive,
  image_size: positive,
  patch_size: positive,
  num_hidden_layers: positive,
  num_attention_heads: positive,
  intermediate_size: positive,
  hidden_act: z.string().default('quick_gelu'),
  layer_norm_eps: z.number().positive().default(1e-5),
});

export type ClipVisionConfig = z.infer<typeof clipVisionSchema>;

const preprocessorSchema = z.looseObject({
  image_mean: z.tuple([z.number(), z.number(), z.number()]),
  image_std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  resample: z.number().int().default(3),
  crop_size: z.union([positive, z.object({ height: positive, width: positive })]).optional(),
  size: z.union([positive, z.object({ shortest_edge: positive })]).optional(),
  do_center_crop: z.boolean().default(true),
});

export interface ClipPreprocessing {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  resample: 'bicubic' | 'bilinear';
}

export async function readJson(dir: string, file: string, what: string): Promise<unknown> {
  const full = path.join(dir, file);
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserInputError(`${dir} is not ${what}: it has no ${file}.`, 'checkpoint_missing');
    throw new UserInputError(`${full} cannot be read (${code ?? (error as Error).message}).`, 'checkpoint_missing');
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UserInputError(`${full} is not valid JSON: ${(error as Error).message}`, 'checkpoint_invalid');
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, file: string, hint = ''): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.path.join('.') || '(root)';
  throw new UserInputError(`${file}: "${key}" ${issue.message.toLowerCase()}${hint}`, 'checkpoint_invalid');
}

/** LISA's config.json; a plain LLaMA/LLaVA config (no mm_hidden_size) is refused here already. */
export async function readLisaConfig(dir: string): Promise<LisaConfig> {
  const file = path.join(dir, 'config.json');
  const json = (await readJson(dir, 'config.json', 'a LISA checkpoint folder')) as Record<string, unknown>;
  if (typeof json === 'object' && json !== null && !('mm_hidden_size' in json) && 'hidden_size' in json) {
    throw new UserInputError(
      `${dir} is not a LISA checkpoint: its config.json has no multimodal keys (mm_hidden_size); a plain LLaMA or Vicuna cannot segment. Use xinlai/LISA-7B-v1 or xinlai/LISA-13B-llama2-v1.`,
      'checkpoint_invalid',
    );
  }
  const config = parse(lisaConfigSchema, json, file);
  if (config.rope_scaling !== undefined && config.rope_scaling !== null) {
    throw new UserInputError(`${file}: rope_scaling ${JSON.stringify(config.rope_scaling)} is not supported (LISA uses none).`, 'checkpoint_invalid');
  }
  if (config.hidden_act !== undefined && config.hidden_act !== 'silu') {
    throw new UserInputError(`${file}: hidden_act "${config.hidden_act}" is not supported (LLaMA uses silu).`, 'checkpoint_invalid');
  }
  if (config.mm_vision_select_feature !== 'patch') {
    throw new UserInputError(`${file}: mm_vision_select_feature "${config.mm_vision_select_feature}" is not supported (LISA uses patch).`, 'checkpoint_invalid');
  }
  if (!config.mm_use_im_start_end) {
    throw new UserInputError(`${file}: mm_use_im_start_end false is not supported (LISA wraps the image in <im_start>/<im_end>).`, 'checkpoint_invalid');
  }
  if (config.hidden_size % config.num_attention_heads !== 0) {
    throw new UserInputError(`${file}: hidden_size ${config.hidden_size} is not a multiple of num_attention_heads ${config.num_attention_heads}.`, 'checkpoint_invalid');
  }
  return config;
}

/** The vision tower named by config.json (a Hub id, or a folder). */
export function visionTowerOf(config: LisaConfig): string | undefined {
  return config.mm_vision_tower ?? config.vision_tower;
}

/** CLIP's vision sizes: `vision_config` of a CLIPModel config (older files: `vision_config_dict`), or a CLIPVisionModel config. */
export async function readClipConfig(dir: string): Promise<ClipVisionConfig> {
  const file = path.join(dir, 'config.json');
  const json = (await readJson(dir, 'config.json', 'a CLIP vision tower folder')) as Record<string, unknown>;
  const vision = json.vision_config ?? json.vision_config_dict ?? (json.model_type === 'clip_vision_model' ? json : undefined);
  if (vision === undefined) {
    throw new UserInputError(`${dir} is not a CLIP vision tower: its config.json has no vision_config (expected openai/clip-vit-large-patch14).`, 'checkpoint_invalid');
  }
  const config = parse(clipVisionSchema, vision, file, ' (in vision_config)');
  if (config.hidden_act !== 'quick_gelu') {
    throw new UserInputError(`${file}: vision hidden_act "${config.hidden_act}" is not supported (CLIP ViT-L/14 uses quick_gelu).`, 'checkpoint_invalid');
  }
  if (config.image_size % config.patch_size !== 0) {
    throw new UserInputError(`${file}: image_size ${config.image_size} is not a multiple of patch_size ${config.patch_size}.`, 'checkpoint_invalid');
  }
  return config;
}

/** CLIP's image preprocessing as LISA uses it (shortest side, centre crop, mean/std). */
export async function readClipPreprocessing(dir: string, vision: ClipVisionConfig): Promise<ClipPreprocessing> {
  const file = path.join(dir, 'preprocessor_config.json');
  const json = await readJson(dir, 'preprocessor_config.json', 'a CLIP vision tower folder');
  const config = parse(preprocessorSchema, json, file);
  const crop = typeof config.crop_size === 'object' ? config.crop_size.height : config.crop_size;
  const resize = typeof config.size === 'object' ? config.size.shortest_edge : config.size;
  const size = crop ?? resize ?? vision.image_size;
  if (size !== vision.image_size || (resize !== undefined && resize !== size) || !config.do_center_crop) {
    throw new UserInputError(
      `${file}: resize ${resize ?? '?'} / crop ${crop ?? '?'} do not give the ${vision.image_size}x${vision.image_size} input the vision tower expects.`,
      'checkpoint_invalid',
    );
  }
  // PIL's codes, as transformers stores them: 3 bicubic, 2 bilinear.
  const resample = config.resample === 3 ? 'bicubic' : config.resample === 2 ? 'bilinear' : undefined;
  if (!resample) throw new UserInputError(`${file}: resample ${config.resample} is not supported (bicubic 3 or bilinear 2).`, 'checkpoint_invalid');
  return { size, mean: config.image_mean, std: config.image_std, resample };
}
