/**
 * What every generated pack shares: the file names, the LLaVA v1 constants,
 * the order files are laid out in, and a crash-safe writer.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { type GraphSpec, graphContract } from '../../src/engine/contract.js';
import { GRAPH_NAMES, type GraphName, MANIFEST_FILE, packManifestSchema } from '../../src/engine/manifest.js';

/** The LLaVA v1 system prompt, verbatim (design/MODEL_PACK.md). */
export const LLAVA_V1_SYSTEM =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

/** LLaVA's `conv_llava_llama_2` system prompt, verbatim (for packs using the llava_llama_2 template). */
export const LLAVA_LLAMA_2_SYSTEM =
  'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.';

/** CLIP ViT-L/14's and SAM's input normalisation, as LISA uses them. */
type Normalisation = { mean: [number, number, number]; std: [number, number, number] };
export const CLIP_NORMALISATION: Normalisation = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
export const SAM_NORMALISATION: Normalisation = { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] };

/** File names of a pack, as design/MODEL_PACK.md lists them. */
export const PACK_FILES = {
  manifest: MANIFEST_FILE,
  tokenizer: 'tokenizer.json',
  graphs: {
    visionEncoder: 'vision_encoder.onnx',
    embedTokens: 'embed_tokens.onnx',
    decoder: 'decoder.onnx',
    segProjection: 'seg_projection.onnx',
    samImageEncoder: 'sam_image_encoder.onnx',
    samMaskDecoder: 'sam_mask_decoder.onnx',
  } satisfies Record<GraphName, string>,
} as const;

export type PackFile = { name: string; bytes: Uint8Array };

const json = (value: unknown) => new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);

/** lisa.json as a generator states it (the schema's input), less the file names packFiles adds. */
export type GeneratedManifest = Omit<z.input<typeof packManifestSchema>, 'graphs' | 'tokenizer'>;

/** The graphs of a pack, each built to its contract (the tensors the engine checks at load). */
export type GraphBuilders = (contract: Record<GraphName, GraphSpec>) => Record<GraphName, Uint8Array>;

/** A pack's files in the order writePackFiles needs: tokenizer, graphs, the manifest last. */
export function packFiles(fields: GeneratedManifest, tokenizer: object, buildGraphs: GraphBuilders): PackFile[] {
  const names = PACK_FILES.graphs;
  const manifest = { ...fields, graphs: names, tokenizer: PACK_FILES.tokenizer };
  // Parsed as the engine parses it: a generator cannot write a manifest the engine would refuse.
  const graphs = buildGraphs(graphContract(packManifestSchema.parse(manifest)));
  return [
    { name: PACK_FILES.tokenizer, bytes: json(tokenizer) },
    ...GRAPH_NAMES.map((key) => ({ name: names[key], bytes: graphs[key] })),
    { name: PACK_FILES.manifest, bytes: json(manifest) },
  ];
}

let tempCounter = 0;

/**
 * Writes a pack's files (manifest last) into `outDir`. Crash safety: lisa.json
 * is removed first and written last, and every file is written under a
 * temporary name and renamed into place, so an interrupted run never leaves a
 * folder that looks like a complete pack (the engine finds no manifest and
 * says how to make one).
 */
export async function writePackFiles(outDir: string, files: readonly PackFile[]): Promise<void> {
  if (files[files.length - 1]?.name !== PACK_FILES.manifest) throw new Error('the manifest must be the last file of a pack');
  await mkdir(outDir, { recursive: true });
  await rm(path.join(outDir, PACK_FILES.manifest), { force: true });
  for (const file of files) {
    const target = path.join(outDir, file.name);
    // Unique per process and call, so concurrent writers never share a temp file.
    const temp = `${target}.tmp-${process.pid}-${tempCounter++}`;
    try {
      await writeFile(temp, file.bytes);
      await rename(temp, target);
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }
}
