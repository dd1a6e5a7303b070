import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { UserInputError } from '../errors.js';
import { checkCommandLine } from './command-line.js';
import { checkDecoderProvider, checkGraph, graphContract } from './contract.js';
import { type GraphName, type PackManifest, loadManifest } from './manifest.js';
import { LisaTokenizer } from './tokenizer.js';

export type ProviderName = 'cuda' | 'tensorrt' | 'cpu';

export interface PackOptions {
  /** Tried in order; `cpu` is always the last resort. */
  providers?: readonly ProviderName[];
  deviceId?: number;
  /** Threads each graph may use on the CPU; 0 or absent: one per core this process may use. */
  cpuThreads?: number;
  logger?: Logger;
}

/** A model pack ready to run: manifest, tokenizer and one checked session per graph. */
export interface LoadedPack {
  dir: string;
  manifest: PackManifest;
  tokenizer: LisaTokenizer;
  sessions: Record<GraphName, ort.InferenceSession>;
  /** The execution provider the sessions actually use. */
  provider: ProviderName;
}

const GRAPH_ORDER: GraphName[] = ['visionEncoder', 'embedTokens', 'decoder', 'segProjection', 'samImageEncoder', 'samMaskDecoder'];

export async function openPack(dir: string, options: PackOptions = {}): Promise<LoadedPack> {
  checkCommandLine();
  const manifest = await loadManifest(dir);
  const tokenizer = await LisaTokenizer.load(dir, manifest);
  const contract = graphContract(manifest);
  const candidates = providerOrder(options.providers);
  const sessions = {} as Record<GraphName, ort.InferenceSession>;
  let provider: ProviderName | undefined;
  try {
    for (const graph of GRAPH_ORDER) {
      const file = path.join(dir, manifest.graphs[graph]);
      await requireFile(file);
      // The first graph settles the provider; the others try the same one first.
      const opened = await createSession(file, provider ? [provider, ...candidates] : candidates, options);
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

function providerOrder(configured: readonly ProviderName[] = ['cpu']): ProviderName[] {
  const order = [...new Set(configured)];
  if (!order.includes('cpu')) order.push('cpu');
  return order;
}

async function requireFile(file: string): Promise<void> {
  try {
    await access(file);
  } catch {
    throw new UserInputError(`Model pack graph ${file} is missing.`, 'model_pack_invalid');
  }
}

/**
 * onnxruntime-node ships the GPU providers' libraries only when its install
 * step downloaded them; without them it fails with a dump of native errors.
 * Checking first gives the user the one fix that matters.
 */
function gpuLibrariesMissing(provider: ProviderName): boolean {
  if (provider === 'cpu') return false;
  const packageDir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const binDir = path.join(packageDir, 'bin', 'napi-v6', process.platform, process.arch);
  return !existsSync(path.join(binDir, `libonnxruntime_providers_${provider === 'tensorrt' ? 'tensorrt' : 'cuda'}.so`));
}

function providerConfig(name: ProviderName, deviceId: number): ort.InferenceSession.ExecutionProviderConfig {
  return name === 'cpu' ? 'cpu' : { name, deviceId };
}

/**
 * Opens one graph on the first provider that loads. onnxruntime-node throws
 * (it does not fall back) when a GPU provider's libraries are missing, so the
 * fallback to the next provider, and finally `cpu`, is ours, with a warning.
 */
async function createSession(
  file: string,
  providers: readonly ProviderName[],
  options: PackOptions,
): Promise<{ session: ort.InferenceSession; provider: ProviderName }> {
  const tried = new Set<ProviderName>();
  let lastError: unknown;
  for (const provider of providers) {
    if (tried.has(provider)) continue;
    tried.add(provider);
    if (gpuLibrariesMissing(provider)) {
      // What `npm ci` installs (package.json's allowScripts), so the usual state of a CPU host, not
      // a problem: info, which the server logs at start-up and the CLI leaves out.
      options.logger?.info(
        { provider, file },
        `execution provider ${provider} unavailable: its libraries are not installed (on a GPU host run \`npm run install-cuda\`); trying the next one`,
      );
      lastError = new Error(`${provider} provider libraries are not installed`);
      continue;
    }
    const executionProviders =
      provider === 'cpu' ? ['cpu'] : [providerConfig(provider, options.deviceId ?? 0), 'cpu'];
    try {
      const session = await ort.InferenceSession.create(file, {
        executionProviders,
        // ONNX Runtime's own default picked one thread on the 2-vCPU VM we
        // measure on; two threads made a bench-pack decoder step clearly faster.
        intraOpNumThreads: options.cpuThreads || availableParallelism(),
        graphOptimizationLevel: 'all',
        // ONNX Runtime's threads spin while idle by default; with several graphs
        // running side by side and pixel workers beside them, spinning only
        // steals the cores the others need.
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
        // A GPU provider that cannot load is expected on CPU hosts: we log our own
        // warning below instead of ONNX Runtime's error-level dump to stderr.
        logSeverityLevel: provider === 'cpu' ? 2 : 4,
      });
      return { session, provider };
    } catch (error) {
      lastError = error;
      if (provider !== 'cpu') {
        options.logger?.warn({ provider, file, err: (error as Error).message }, `execution provider ${provider} unavailable; trying the next one`);
      }
    }
  }
  throw new UserInputError(
    `Model pack graph ${file} cannot be loaded: ${(lastError as Error)?.message ?? 'no execution provider worked'}`,
    'model_pack_invalid',
  );
}
