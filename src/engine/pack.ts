import { access } from 'node:fs/promises';
import path from 'node:path';
import type ort from 'onnxruntime-node';
import { UserInputError } from '../errors.js';
import { checkCommandLine } from './command-line.js';
import { checkDecoderProvider, checkGraph, graphContract } from './contract.js';
import { GRAPH_NAMES, type GraphName, type PackManifest, loadManifest } from './manifest.js';
import { type ProviderName, type SessionOptions, createSession, providerOrder } from './providers.js';
import { LisaTokenizer } from './tokenizer.js';


export interface PackOptions extends SessionOptions {
  /** Tried in order; `cpu` is the last resort unless `cpuFallback` is false. */
  providers?: readonly ProviderName[];
  /** False: fail when none of `providers` loads (a benchmark of one provider) instead of running on cpu. */
  cpuFallback?: boolean;
  /** Only these graphs are opened (all by default): another thread may run the others (sam-thread.ts). */
  graphs?: readonly GraphName[];
}

/** A model pack ready to run: manifest, tokenizer and one checked session per graph. */
export interface LoadedPack {
  dir: string;
  manifest: PackManifest;
  tokenizer: LisaTokenizer;
  sessions: Record<GraphName, ort.InferenceSession>;
  /** The execution provider the sessions actually use. */
  provider: ProviderName;
  /** Told of every run made through runGraph (the engine lists each chat's runs with it). */
  onGraphRun?: (run: GraphRunTiming) => void;
}

/** One graph run: when it started and ended, in performance.now() milliseconds. */
export interface GraphRunTiming {
  graph: GraphName;
  start: number;
  end: number;
}

/** Runs one of the pack's graphs: the one place where graph runs are timed. */
export async function runGraph(
  pack: LoadedPack,
  graph: GraphName,
  feeds: ort.InferenceSession.FeedsType,
): Promise<ort.InferenceSession.ReturnType> {
  const start = performance.now();
  try {
    const session = pack.sessions[graph];
    if (!session) throw new Error(`graph ${graph} is not open here (PackOptions.graphs)`);
    return await session.run(feeds);
  } finally {
    pack.onGraphRun?.({ graph, start, end: performance.now() });
  }
}

export async function openPack(dir: string, options: PackOptions = {}): Promise<LoadedPack> {
  checkCommandLine();
  const manifest = await loadManifest(dir);
  const tokenizer = await LisaTokenizer.load(dir, manifest);
  const contract = graphContract(manifest);
  const candidates = usableProviders(manifest, providerOrder(options.providers, options.cpuFallback), options);
  const sessions = {} as Record<GraphName, ort.InferenceSession>;
  let provider: ProviderName | undefined;
  try {
    for (const graph of GRAPH_NAMES.filter((name) => !options.graphs || options.graphs.includes(name))) {
      const file = path.join(dir, manifest.graphs[graph]);
      await requireFile(file);
      // The first graph settles the provider; the others try the same one first.
      const opened = await createSession(file, provider ? [provider, ...candidates] : candidates, options, graph === 'decoder' ? presentNames(manifest) : []);
      provider = opened.provider;
      checkDecoderProvider(manifest, provider);
      checkGraph(file, contract[graph], opened.session);
      sessions[graph] = opened.session;
    }
  } catch (error) {
    await Promise.allSettled(Object.values(sessions).map((s) => s.release()));
    throw error;
  }
  return { dir, manifest, tokenizer, sessions, provider: provider ?? 'cpu' };
}

export async function releasePack(pack: LoadedPack): Promise<void> {
  await Promise.allSettled(Object.values(pack.sessions).map((s) => s.release()));
}

/** The decoder's KV outputs, which a device provider keeps where they are (kv.ts feeds them back as past). */
function presentNames(manifest: PackManifest): string[] {
  const names: string[] = [];
  for (let i = 0; i < manifest.decoder.layers; i++) names.push(`present.${i}.key`, `present.${i}.value`);
  return names;
}

/**
 * Providers known to compute a pack's graphs wrongly are left out, with a
 * warning. onnxruntime 1.30's WebGPU GroupQueryAttention (the fused decoder)
 * is wrong from 32 positions on: alone, its output is 5e-2 off the CPU's at 32
 * and more and 2e-7 below, with or without rotary; in the fused decoder the
 * hidden states are 0.1-0.8 off and the parity fixture's answer changes.
 * Seen on Mesa's lavapipe, the only WebGPU device we could try, so it may be
 * lavapipe's; the plain decoder matches the CPU there (test/webgpu.test.ts).
 */
function usableProviders(manifest: PackManifest, order: ProviderName[], options: PackOptions): ProviderName[] {
  if (manifest.decoder.form !== 'fused' || !order.includes('webgpu')) return order;
  options.logger?.warn(
    { provider: 'webgpu', pack: manifest.name },
    'execution provider webgpu skipped: its GroupQueryAttention gives wrong answers with a fused decoder (convert with --decoder plain for webgpu); trying the next one',
  );
  return order.filter((p) => p !== 'webgpu');
}

async function requireFile(file: string): Promise<void> {
  try {
    await access(file);
  } catch {
    throw new UserInputError(`Model pack graph ${file} is missing.`, 'model_pack_invalid');
  }
}
