import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { UserInputError } from '../errors.js';
import { packDtypes } from './floats.js';

/** The manifest of a `lisa-onnx/1` model pack (`lisa.json`); see models/README.md. */
const normalisation = z.object({
  size: z.number().int().positive(),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
});

export const packManifestSchema = z.object({
  format: z.literal('lisa-onnx/1'),
  name: z.string().min(1),
  license: z.string().optional(),
  /** True for packs that are not LISA (the toy and bench packs): surfaces say so. */
  demo: z.boolean().optional(),
  dtype: z.enum(packDtypes),
  template: z.enum(['llava_v1', 'llava_llama_2']),
  system: z.string(),
  tokens: z.object({
    seg: z.string().min(1),
    imageStart: z.string().min(1),
    imageEnd: z.string().min(1),
    image: z.string().min(1),
    /** Ends an answer; also the template's sep2 in llava_v1. */
    eos: z.string().min(1).default('</s>'),
  }),
  imageTokens: z.number().int().positive(),
  clip: normalisation.extend({ resample: z.enum(['bicubic', 'bilinear']).default('bicubic') }),
  sam: normalisation,
  decoder: z.object({
    layers: z.number().int().positive(),
    kvHeads: z.number().int().positive(),
    headDim: z.number().int().positive(),
    hidden: z.number().int().positive(),
    vocab: z.number().int().positive(),
    contextLength: z.number().int().positive(),
    /**
     * The decoder graph's form (src/engine/contract.ts): `plain` (logits out, greedy choice in the
     * engine) or `fused` (GroupQueryAttention etc., the greedy choice inside the graph).
     */
    form: z.enum(['plain', 'fused']).default('plain'),
    /**
     * The fused decoder graph also holds an ONNX Loop that runs greedy decoding inside one run()
     * (models/converter/graphs/llama-loop.ts; used per provider by src/engine/generate-loop.ts).
     */
    onDeviceLoop: z.boolean().default(false),
    /**
     * The decoder's Linears stored as com.microsoft MatMulNBits, symmetric, `blockSize` weights
     * per scale (models/converter/quantize.ts); null: float weights. Informational: the graph is
     * self-describing, this says what the pack is.
     */
    quantization: z
      .object({ bits: z.union([z.literal(4), z.literal(8)]), blockSize: z.number().int().positive() })
      .nullable()
      .default(null),
  }).refine((d) => !d.onDeviceLoop || d.form === 'fused', { message: 'onDeviceLoop needs decoder.form "fused"', path: ['onDeviceLoop'] }),
  generation: z.object({ maxNewTokens: z.number().int().positive() }),
  graphs: z.object({
    visionEncoder: z.string().min(1),
    embedTokens: z.string().min(1),
    decoder: z.string().min(1),
    segProjection: z.string().min(1),
    samImageEncoder: z.string().min(1),
    samMaskDecoder: z.string().min(1),
  }),
  tokenizer: z.string().min(1).default('tokenizer.json'),
});

export type PackManifest = z.infer<typeof packManifestSchema>;
export type GraphName = keyof PackManifest['graphs'];

/** The graphs of a pack, in the order the engine opens them and the generators write them. */
export const GRAPH_NAMES = Object.keys(packManifestSchema.shape.graphs.shape) as GraphName[];

export const MANIFEST_FILE = 'lisa.json';

/** Reads and validates `lisa.json`; every failure names the file and the bad key. */
export async function loadManifest(packDir: string): Promise<PackManifest> {
  const file = path.join(packDir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'not found' : `unreadable (${code ?? String(error)})`;
    throw new UserInputError(
      `No model pack at ${packDir}: ${file} is ${reason}. Make one with \`lisa-bot models toy --out ${packDir}\`.`,
      'model_pack_missing',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UserInputError(`Model pack manifest ${file} is not valid JSON: ${(error as Error).message}`, 'model_pack_invalid');
  }
  const parsed = packManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path.join('.') || '(root)';
    throw new UserInputError(`Model pack manifest ${file} is invalid at "${key}": ${issue.message}`, 'model_pack_invalid');
  }
  return parsed.data;
}

/**
 * Names a pack by its manifest's content, so that a job queued for one pack is
 * never answered by a worker that loaded another (a converted pack's manifest
 * records its dtype, form, quantization and graphs). Both sides parse the same
 * file with the same schema, so the parsed manifest serialises alike.
 */
export function packFingerprint(manifest: PackManifest): string {
  return `${manifest.name}@${createHash('sha256').update(JSON.stringify(manifest)).digest('hex').slice(0, 12)}`;
}
