/**
 * The `lisa.json` of a converted pack: every number from the checkpoint's
 * files (checked against the weights by convert.ts), `demo: false`.
 */
import type { z } from 'zod';
import type { PackDtype } from '../../src/engine/floats.js';
import type { packManifestSchema } from '../../src/engine/manifest.js';
import { LLAVA_LLAMA_2_SYSTEM, LLAVA_V1_SYSTEM, PACK_FILES, SAM_NORMALISATION } from '../generator/pack-files.js';
import type { ClipPreprocessing, LisaConfig } from './checkpoint-config.js';
import type { Quantization } from './quantize.js';

export type Template = 'llava_v1' | 'llava_llama_2';

export interface ManifestInput {
  name: string;
  license?: string;
  dtype: PackDtype;
  /** The decoder graph's form: plain or fused (src/engine/contract.ts). */
  decoderForm: 'plain' | 'fused';
  /** The fused decoder holds the greedy ONNX Loop (src/engine/generate-loop.ts). */
  onDeviceLoop: boolean;
  /** The decoder's Linears as MatMulNBits, or null (float). */
  quantization: Quantization | null;
  template: Template;
  lisa: LisaConfig;
  /** Vocabulary rows of the embedding / lm_head (config.json's vocab_size, checked). */
  vocab: number;
  imageTokens: number;
  clip: ClipPreprocessing;
  /** SAM's input side (patch size x grid), read from the image encoder's weights. */
  samSize: number;
  tokens: { seg: string; imageStart: string; imageEnd: string; eos: string };
  /** Provenance: where the weights came from and how they were converted. */
  source: Record<string, unknown>;
}

/** lisa.json as the converter writes it: the engine's schema (its input side), plus where the weights came from. */
export type ConvertedManifest = z.input<typeof packManifestSchema> & { converted: Record<string, unknown> };

export function packManifest(input: ManifestInput): ConvertedManifest {
  const { lisa } = input;
  const heads = lisa.num_attention_heads;
  return {
    format: 'lisa-onnx/1',
    name: input.name,
    ...(input.license ? { license: input.license } : {}),
    demo: false,
    dtype: input.dtype,
    template: input.template,
    system: input.template === 'llava_v1' ? LLAVA_V1_SYSTEM : LLAVA_LLAMA_2_SYSTEM,
    tokens: { ...input.tokens, image: '<image>' },
    imageTokens: input.imageTokens,
    clip: { size: input.clip.size, mean: input.clip.mean, std: input.clip.std, resample: input.clip.resample },
    sam: { size: input.samSize, ...SAM_NORMALISATION },
    decoder: {
      layers: lisa.num_hidden_layers,
      kvHeads: lisa.num_key_value_heads ?? heads,
      headDim: lisa.hidden_size / heads,
      hidden: lisa.hidden_size,
      vocab: input.vocab,
      contextLength: lisa.max_position_embeddings,
      form: input.decoderForm,
      onDeviceLoop: input.onDeviceLoop,
      quantization: input.quantization,
    },
    // LISA's chat.py generates at most 512 new tokens.
    generation: { maxNewTokens: 512 },
    graphs: PACK_FILES.graphs,
    tokenizer: PACK_FILES.tokenizer,
    converted: input.source,
  };
}
