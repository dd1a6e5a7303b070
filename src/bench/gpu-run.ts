/**
 * One provider's part of bench:gpu: open the pack on it, answer N turns
 * (each a fresh conversation on a fresh copy of the image, so every stage runs
 * every turn: no cached image embeddings, no reused KV prefix), and keep each
 * stage's time.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Engine } from '../engine/engine.js';
import { ImagesInMemory } from '../engine/images-in-memory.js';
import type { ProviderName } from '../engine/providers.js';
import type { PackManifest } from '../engine/manifest.js';
import { GpuMemorySampler } from './gpu-device.js';

export const GPU_STAGES = ['visionEncoder', 'prefill', 'decodeSteps', 'samEncoder', 'maskDecoder'] as const;
export type GpuStage = (typeof GPU_STAGES)[number];

export interface GpuTurn {
  /** ms per stage, as the engine timed it. */
  stages: Record<GpuStage, number>;
  totalMs: number;
  promptPositions: number;
  generated: number;
  decodeRuns: number;
}

export interface ProviderRun {
  provider: ProviderName;
  /** Why the provider could not open the pack here; then there are no turns. */
  unavailable?: string;
  turns: GpuTurn[];
  /** This process's peak GPU memory (nvidia-smi), undefined where it cannot be read. */
  peakGpuMemoryMiB?: number;
}

/** Bytes of the decoder graph's weights: decoder.onnx and its external data files. */
export async function decoderWeightBytes(packDir: string, manifest: PackManifest): Promise<number> {
  const graph = manifest.graphs.decoder;
  let bytes = 0;
  for (const name of await readdir(packDir)) {
    if (name === graph || name.startsWith(`${graph}.`)) bytes += (await stat(path.join(packDir, name))).size;
  }
  return bytes;
}

/** A copy of the image whose hash differs per turn, so the image embedding cache never answers. */
function variant(image: Uint8Array, turn: number): Uint8Array {
  // Bytes after a PNG's IEND or a JPEG's EOI are ignored by decoders but change the hash.
  const copy = new Uint8Array(image.length + 4);
  copy.set(image);
  new DataView(copy.buffer).setUint32(image.length, turn);
  return copy;
}

export async function runProvider(
  packDir: string,
  provider: ProviderName,
  options: { turns: number; image: Uint8Array; question: string; logger?: Logger },
): Promise<ProviderRun> {
  const images = new ImagesInMemory();
  const memory = new GpuMemorySampler();
  memory.start();
  let engine: Engine;
  try {
    // No fallback to cpu: a provider that cannot load is reported, not measured on something else.
    // Caches of one byte hold nothing: each turn pays for every stage.
    engine = await Engine.open(packDir, { images, providers: [provider], cpuFallback: false, cache: { imageBytes: 0, kvBytes: 0 }, logger: options.logger });
  } catch (error) {
    await memory.stop();
    if (provider === 'cpu') throw error;
    return { provider, unavailable: (error as Error).message.split('\n')[0]!, turns: [] };
  }
  const turns: GpuTurn[] = [];
  try {
    for (let i = 0; i < options.turns; i++) {
      const hash = images.add(variant(options.image, i));
      const result = await engine.chat({ imageHash: hash, turns: [{ user: options.question }] });
      images.delete(hash);
      const stages = Object.fromEntries(GPU_STAGES.map((s) => [s, result.timings[s]])) as Record<GpuStage, number>;
      turns.push({
        stages,
        totalMs: result.timings.total,
        promptPositions: result.tokens.prompt,
        generated: result.tokens.generated,
        decodeRuns: result.tokens.decodeRuns,
      });
    }
  } finally {
    await engine.close();
  }
  return { provider, turns, peakGpuMemoryMiB: await memory.stop() };
}
