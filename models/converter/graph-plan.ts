/**
 * Which graphs a pack gets, the sizes each is built to (config.json, checked
 * against the weights), and the checkpoint tensors each reads — known before
 * anything is built, for the checks, the progress totals and the choice of
 * external data.
 */
import type { GraphName } from '../../src/engine/manifest.js';
import { PACK_FILES } from '../generator/pack-files.js';
import type { ClipVisionConfig, LisaConfig } from './checkpoint-config.js';
import { type ClipVisionSpec, buildVisionEncoderGraph, checkClipSpecAgainstWeights, clipImageTokens, clipLayersUsed, clipShapesOf, visionEncoderTensors } from './graphs/clip.js';
import type { PackDtype } from '../../src/engine/floats.js';
import type { TensorRef } from './graphs/context.js';
import { buildDecoderGraph, buildEmbedTokensGraph, buildSegProjectionGraph, languageGraphTensors } from './graphs/llama.js';
import { buildFusedDecoderGraph } from './graphs/llama-fused.js';
import { LOOP_DECODER_EXTRA_TENSORS, buildLoopDecoderGraph } from './graphs/llama-loop.js';
import { type LlamaSpec, checkLlamaSpec, checkLlamaSpecAgainstWeights, llamaShapesOf, llamaSpecFromConfig } from './graphs/llama-spec.js';
import { buildSamImageEncoderGraph, samImageEncoderTensors } from './graphs/sam-image-encoder.js';
import { buildSamMaskDecoderGraph, samMaskDecoderTensors } from './graphs/sam-mask-decoder.js';
import { type SamImageEncoderSpec, type SamMaskDecoderSpec, readSamImageEncoderSpec, readSamMaskDecoderSpec } from './graphs/sam-spec.js';
import type { Quantization } from './quantize.js';
import type { WeightGraph } from './weight-graph.js';
import { checkIsLisa, checkLisaHeads, checkVisionTowerWidth } from './weight-checks.js';
import type { WeightSource } from './weights.js';

export interface GraphPlan {
  key: GraphName;
  file: string;
  tensors: TensorRef[];
  /** Which of `tensors` are stored as MatMulNBits, and how (--quantize): for the size estimate. */
  quantized?: { quantization: Quantization; tensors: ReadonlySet<string> };
  build(target: { graph: WeightGraph; onTensor?: (name: string, bytes: number) => void }): Promise<void>;
}

export interface PackSpecs {
  llama: LlamaSpec;
  clip: ClipVisionSpec;
  clipLayersUsed: number;
  imageTokens: number;
  samEncoder: SamImageEncoderSpec;
  samDecoder: SamMaskDecoderSpec;
}

export interface PlanInput {
  lisaDir: string;
  lisa: LisaConfig;
  lisaWeights: WeightSource;
  clipDir: string;
  clipConfig: ClipVisionConfig;
  clipWeights: WeightSource;
  dtype: PackDtype;
  /** The decoder graph's form (src/engine/contract.ts); default plain. */
  decoderForm?: DecoderForm;
  /** A fused decoder also holds the greedy ONNX Loop (graphs/llama-loop.ts); default false. */
  deviceLoop?: boolean;
  /** The decoder's Linears as MatMulNBits (only the decoder: the seg projection and vision stay float). */
  quantization?: Quantization | null;
}

export type DecoderForm = 'plain' | 'fused';

/** Every check that needs only shapes, then the six graphs to build. */
export function planGraphs(input: PlanInput): { specs: PackSpecs; plans: GraphPlan[] } {
  const { lisa, lisaWeights: source, clipWeights: clipSource, dtype } = input;
  checkIsLisa(input.lisaDir, source);
  const llama = llamaSpecFromConfig(lisa);
  checkLlamaSpec(llama);
  checkLlamaSpecAgainstWeights(llama, llamaShapesOf(source));
  checkLisaHeads(input.lisaDir, lisa, source);

  const clipShapes = clipShapesOf(clipSource);
  checkVisionTowerWidth(input.clipDir, clipShapes.hidden, lisa);
  const c = input.clipConfig;
  const clip: ClipVisionSpec = {
    hidden: c.hidden_size,
    intermediate: c.intermediate_size,
    heads: c.num_attention_heads,
    patch: c.patch_size,
    imageSize: c.image_size,
    layerNormEps: c.layer_norm_eps,
    layers: c.num_hidden_layers,
    selectLayer: lisa.mm_vision_select_layer,
    selectFeature: 'patch',
    outHidden: lisa.hidden_size,
  };
  checkClipSpecAgainstWeights(clip, clipShapes);

  const samEncoder = readSamImageEncoderSpec(source);
  const samDecoder = readSamMaskDecoderSpec(source);
  const specs: PackSpecs = { llama, clip, clipLayersUsed: clipLayersUsed(clip), imageTokens: clipImageTokens(clip), samEncoder, samDecoder };

  const language = languageGraphTensors({ source }, llama);
  const refs = (names: string[]) => names.map((name) => ({ source, name }));
  const files = PACK_FILES.graphs;
  const loop = input.decoderForm === 'fused' && input.deviceLoop === true;
  const base = { source, dtype };
  const decoderBase = { ...base, quantization: input.quantization ?? null };
  const plans: GraphPlan[] = [
    {
      key: 'embedTokens',
      file: files.embedTokens,
      tensors: language.embedTokens,
      build: (t) => buildEmbedTokensGraph({ ...base, ...t }, llama),
    },
    {
      key: 'segProjection',
      file: files.segProjection,
      tensors: language.segProjection,
      build: (t) => buildSegProjectionGraph({ ...base, ...t }, { hidden: llama.hidden, outDim: lisa.out_dim }),
    },
    {
      key: 'visionEncoder',
      file: files.visionEncoder,
      tensors: visionEncoderTensors({ source, clipSource }, clip),
      build: (t) => buildVisionEncoderGraph({ ...base, clipSource, ...t }, clip),
    },
    {
      key: 'samMaskDecoder',
      file: files.samMaskDecoder,
      tensors: refs(samMaskDecoderTensors(samDecoder)),
      build: (t) => buildSamMaskDecoderGraph({ ...base, ...t }, samDecoder),
    },
    {
      key: 'samImageEncoder',
      file: files.samImageEncoder,
      tensors: refs(samImageEncoderTensors(samEncoder)),
      build: (t) => buildSamImageEncoderGraph({ ...base, ...t }, samEncoder),
    },
    {
      key: 'decoder',
      file: files.decoder,
      tensors: loop ? [...language.decoder, ...refs(LOOP_DECODER_EXTRA_TENSORS)] : language.decoder,
      // The decoder's matrices are its Linears (the rest are norm vectors).
      ...(input.quantization ? { quantized: { quantization: input.quantization, tensors: new Set(language.decoder.filter((t) => t.source.info(t.name)!.shape.length === 2).map((t) => t.name)) } } : {}),
      build: (t) =>
        input.decoderForm !== 'fused'
          ? buildDecoderGraph({ ...decoderBase, ...t }, llama)
          : (loop ? buildLoopDecoderGraph : buildFusedDecoderGraph)({ ...decoderBase, ...t }, { ...llama, maxPositions: lisa.max_position_embeddings }),
    },
  ];
  return { specs, plans };
}
