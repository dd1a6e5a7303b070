/**
 * `lisa-bot models convert`: a published LISA checkpoint (plus its CLIP vision
 * tower) in, a `lisa-onnx/1` pack out. The graphs are built from the weights
 * directly (graphs/), one tensor in memory at a time, into a temporary folder
 * that is renamed into place only when the pack is complete.
 */
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PackDtype } from '../../src/engine/floats.js';
import { UserInputError } from '../../src/errors.js';
import { PACK_FILES } from '../generator/pack-files.js';
import { readClipConfig, readClipPreprocessing, readLisaConfig, visionTowerOf } from './checkpoint-config.js';
import { openCheckpoint } from './checkpoint/index.js';
import { type DecoderForm, type GraphPlan, planGraphs } from './graph-plan.js';
import { sourceBytes } from './graphs/context.js';
import { resolveModelSource } from './hub.js';
import { type Template, packManifest } from './pack-manifest.js';
import { type ConvertProgress, formatBytes, silentProgress } from './progress.js';
import { prepareOutputFolder } from './output-folder.js';
import { type Quantization, checkQuantization, packedBytes } from './quantize.js';
import { writePackTokenizer } from './tokenizer/index.js';
import { INLINE_WEIGHT_LIMIT, WeightGraph } from './weight-graph.js';
import type { WeightSource } from './weights.js';

/** The decoder form packs get unless --decoder says otherwise: fused was never slower on CPU (docs/converter.md, "Fused decoder"). */
export const DEFAULT_DECODER_FORM: DecoderForm = 'fused';

export interface ConvertOptions {
  /** A checkpoint folder, or a Hub id (`xinlai/LISA-7B-v1`). */
  checkpoint: string;
  /** The CLIP folder or Hub id; default: config.json's vision_tower. */
  visionTower?: string;
  out: string;
  dtype?: PackDtype;
  /** The decoder graph's form (default: DEFAULT_DECODER_FORM). */
  decoder?: DecoderForm;
  /** A fused decoder also runs greedy decoding in an ONNX Loop (default true; ignored for plain). */
  deviceLoop?: boolean;
  /** The decoder's Linears as MatMulNBits (--quantize, --block-size); default null: float. */
  quantization?: Quantization | null;
  template?: Template;
  maxNewTokens?: number;
  /** `always` writes every graph's weights to external data (tests, very large packs). */
  externalData?: 'auto' | 'always';
  /** Replace a non-empty --out folder. */
  force?: boolean;
  progress?: ConvertProgress;
  /** Hub cache, endpoint and token (default: HF_HOME, HF_ENDPOINT, HF_TOKEN); `quiet` hides download progress. */
  hub?: { cacheDir?: string; endpoint?: string; token?: string; quiet?: boolean };
}

export interface ConvertSummary {
  out: string;
  name: string;
  dtype: PackDtype;
  decoder: DecoderForm;
  quantization: Quantization | null;
  files: { name: string; bytes: number }[];
  totalBytes: number;
  seconds: number;
  peakRssBytes: number;
  sizes: { hidden: number; layers: number; heads: number; vocab: number; contextLength: number; clipLayers: number; samDepth: number; samWidth: number };
  tokens: { seg: number; imageStart: number; imageEnd: number };
}

export async function convertCheckpoint(options: ConvertOptions): Promise<ConvertSummary> {
  const started = performance.now();
  const progress = options.progress ?? silentProgress;
  const dtype = options.dtype ?? 'float16';
  const decoderForm = options.decoder ?? DEFAULT_DECODER_FORM;
  const quantization = options.quantization ?? null;
  if (quantization) checkQuantization(quantization);
  const deviceLoop = decoderForm === 'fused' && options.deviceLoop !== false;
  const { quiet, ...hubOptions } = options.hub ?? {};
  // Downloads show their own progress on stderr (nothing else writes there meanwhile).
  const hub = { ...hubOptions, ...(quiet ? { progress: false as const } : {}) };

  const lisaDir = (await resolveModelSource(options.checkpoint, 'lisa', hub)).dir;
  const lisa = await readLisaConfig(lisaDir);
  const towerArg = options.visionTower ?? visionTowerOf(lisa);
  if (!towerArg) {
    throw new UserInputError(`${lisaDir}/config.json names no vision_tower: pass --vision-tower (openai/clip-vit-large-patch14 or its folder).`, 'checkpoint_invalid');
  }
  const clipDir = (await resolveModelSource(towerArg, 'clip', hub)).dir;
  const clipConfig = await readClipConfig(clipDir);
  const clipPreprocessing = await readClipPreprocessing(clipDir, clipConfig);

  const sources: WeightSource[] = [];
  const folder = await prepareOutputFolder(options.out, options.force ?? false);
  try {
    const lisaWeights = await openCheckpoint(lisaDir);
    sources.push(lisaWeights);
    const clipWeights = await openCheckpoint(clipDir);
    sources.push(clipWeights);
    const { specs, plans } = planGraphs({ lisaDir, lisa, lisaWeights, clipDir, clipConfig, clipWeights, dtype, decoderForm, deviceLoop, quantization });
    progress.note(`LISA checkpoint ${lisaDir}: hidden ${lisa.hidden_size}, ${lisa.num_hidden_layers} layers, vocab ${lisa.vocab_size}`);
    progress.note(`vision tower ${clipDir}: CLIP hidden ${clipConfig.hidden_size}, ${specs.clipLayersUsed} of ${clipConfig.num_hidden_layers} layers used`);

    const tokenizer = await writePackTokenizer(lisaDir, folder.temp, lisa.vocab_size);
    progress.note(`tokenizer: ${tokenizer.vocabSize} pieces, [SEG] = ${tokenizer.ids.seg}`);

    for (const plan of plans) {
      const bytesOut = estimatedBytes(plan, dtype === 'float16' ? 2 : 4);
      const external = options.externalData === 'always' || bytesOut > INLINE_WEIGHT_LIMIT;
      const file = path.join(folder.temp, plan.file);
      const graph = new WeightGraph(plan.key, external ? { externalDataFile: `${file}.data` } : {});
      const bytesIn = plan.tensors.reduce((sum, t) => sum + sourceBytes(t.source, t.name), 0);
      progress.stage(plan.file, plan.tensors.length, bytesIn);
      try {
        await plan.build({ graph, onTensor: (name, bytes) => progress.tensor(name, bytes) });
        await writeFile(file, graph.finish(`lisa-bot models convert: ${plan.key} from ${options.checkpoint}`));
      } catch (error) {
        graph.abandon();
        throw error;
      }
    }
    progress.done();

    const name = packName(options.checkpoint, lisaDir);
    const manifest = packManifest({
      name,
      license: await readLicence(lisaDir),
      dtype,
      decoderForm,
      onDeviceLoop: deviceLoop,
      quantization,
      template: options.template ?? 'llava_v1',
      lisa,
      vocab: lisa.vocab_size,
      imageTokens: specs.imageTokens,
      clip: clipPreprocessing,
      samSize: specs.samEncoder.imageSize,
      tokens: tokenizer.tokens,
      source: { checkpoint: options.checkpoint, visionTower: towerArg, by: 'lisa-bot models convert' },
    });
    if (options.maxNewTokens !== undefined) manifest.generation.maxNewTokens = options.maxNewTokens;
    // The manifest last: a folder without it is never taken for a pack.
    await writeFile(path.join(folder.temp, PACK_FILES.manifest), `${JSON.stringify(manifest, null, 2)}\n`);
    const files = await listFiles(folder.temp);
    await folder.commit();
    return {
      out: path.resolve(options.out),
      name,
      dtype,
      decoder: decoderForm,
      quantization,
      files,
      totalBytes: files.reduce((a, f) => a + f.bytes, 0),
      seconds: (performance.now() - started) / 1000,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      sizes: {
        hidden: lisa.hidden_size,
        layers: lisa.num_hidden_layers,
        heads: lisa.num_attention_heads,
        vocab: lisa.vocab_size,
        contextLength: lisa.max_position_embeddings,
        clipLayers: specs.clipLayersUsed,
        samDepth: specs.samEncoder.windows.length,
        samWidth: specs.samEncoder.width,
      },
      tokens: tokenizer.ids,
    };
  } catch (error) {
    await folder.discard();
    throw error;
  } finally {
    await Promise.allSettled(sources.map((s) => s.close()));
  }
}

/** A graph's weight bytes as written: quantized Linears at their packed size (codes + one scale a block). */
function estimatedBytes(plan: GraphPlan, elementBytes: number): number {
  return plan.tensors.reduce((sum, t) => {
    const shape = t.source.info(t.name)!.shape;
    if (plan.quantized?.tensors.has(t.name)) return sum + packedBytes(shape[0]!, shape[1]!, plan.quantized.quantization, elementBytes);
    return sum + shape.reduce((a, b) => a * b, 1) * elementBytes;
  }, 0);
}

/** `xinlai/LISA-7B-v1` -> `LISA-7B-v1`; a folder -> its name. */
function packName(arg: string, dir: string): string {
  const base = path.basename(path.resolve(dir));
  const fromArg = arg.replace(/@.*$/, '').split('/').filter(Boolean).pop();
  return (/^models--/.test(base) || base.length === 40 ? fromArg : base) ?? base;
}

/** The model card's licence (front matter of README.md), when the checkpoint has one. */
async function readLicence(dir: string): Promise<string | undefined> {
  try {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(path.join(dir, 'README.md'), 'utf8');
    return /^---[\s\S]*?^license:\s*(.+)$/m.exec(text)?.[1]?.trim();
  } catch {
    return undefined;
  }
}

async function listFiles(dir: string): Promise<{ name: string; bytes: number }[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (name) => ({ name, bytes: (await stat(path.join(dir, name))).size })));
}

/** `, LLM Linears int4 (block 32)` for a quantized pack; nothing for float weights. */
function quantizationText(q: Quantization | null): string {
  return q ? `, LLM Linears int${q.bits} (block ${q.blockSize})` : '';
}

export function summaryText(summary: ConvertSummary): string {
  const s = summary.sizes;
  const lines = [
    `pack written: ${summary.out}`,
    `  ${summary.name}, ${summary.dtype}, ${summary.decoder} decoder${quantizationText(summary.quantization)}: LLaMA hidden ${s.hidden}, ${s.layers} layers, ${s.heads} heads, vocab ${s.vocab}, context ${s.contextLength}`,
    `  CLIP ${s.clipLayers} layers used; SAM encoder depth ${s.samDepth}, width ${s.samWidth}`,
    `  tokens: [SEG] ${summary.tokens.seg}, <im_start> ${summary.tokens.imageStart}, <im_end> ${summary.tokens.imageEnd}`,
    ...summary.files.map((f) => `  ${f.name.padEnd(28)} ${formatBytes(f.bytes).padStart(10)}`),
    `  total ${formatBytes(summary.totalBytes)} in ${summary.seconds.toFixed(1)} s, peak memory ${formatBytes(summary.peakRssBytes)}`,
    `use it: lisa-bot ask --model ${summary.out} --image photo.jpg "what here would keep me dry?"  (or set model.path)`,
  ];
  return `${lines.join('\n')}\n`;
}
