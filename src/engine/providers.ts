import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { UserInputError } from '../errors.js';

export type ProviderName = 'cuda' | 'tensorrt' | 'webgpu' | 'cpu';

/**
 * Providers whose decoder KV outputs stay in device memory and are fed back
 * as the next step's past without a copy to the host (kv.ts).
 */
export const DEVICE_KV_PROVIDERS: readonly ProviderName[] = ['webgpu'];

/** Providers that work but have not been measured on real hardware (docs/performance.md). */
export const EXPERIMENTAL_PROVIDERS: readonly ProviderName[] = ['webgpu'];

export interface SessionOptions {
  deviceId?: number;
  /** Threads each graph may use on the CPU; 0 or absent: one per core this process may use. */
  cpuThreads?: number;
  logger?: Logger;
}

/** `configured` without repeats, then `cpu` as the last resort unless `cpuFallback` is false. */
export function providerOrder(configured: readonly ProviderName[] = ['cpu'], cpuFallback = true): ProviderName[] {
  const order = [...new Set(configured)];
  if (cpuFallback && !order.includes('cpu')) order.push('cpu');
  return order;
}

/**
 * Why `provider` cannot work on this host, when that is known without trying:
 * onnxruntime-node ships the CUDA libraries only when its install step
 * downloaded them, and its WebGPU provider (Dawn over Vulkan on Linux) needs
 * the Vulkan loader; without them it fails with a dump of native errors, so
 * checking first gives the user the one fix that matters.
 */
export function providerMissing(provider: ProviderName): string | undefined {
  if (provider === 'cpu') return undefined;
  if (provider === 'webgpu') {
    if (!ort.listSupportedBackends().some((b) => b.name === 'webgpu' && b.bundled)) {
      return 'this onnxruntime-node build has no WebGPU provider';
    }
    if (process.platform === 'linux' && !sharedLibraryLoads('libvulkan.so.1')) {
      return 'the Vulkan loader is not installed (apt install libvulkan1 plus a Vulkan driver: the GPU vendor\'s, or mesa-vulkan-drivers)';
    }
    return undefined;
  }
  const packageDir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'));
  const binDir = path.join(packageDir, 'bin', 'napi-v6', process.platform, process.arch);
  const library = `libonnxruntime_providers_${provider === 'tensorrt' ? 'tensorrt' : 'cuda'}.so`;
  if (existsSync(path.join(binDir, library))) return undefined;
  return 'its libraries are not installed (on a GPU host run `npm run install-cuda`)';
}

/**
 * Whether the dynamic linker finds `name`. process.dlopen is the only way Node
 * has to ask; the library loads but is no Node module, which is a different error.
 */
function sharedLibraryLoads(name: string): boolean {
  try {
    process.dlopen({ exports: {} }, name);
    return true;
  } catch (error) {
    return !/cannot open shared object file/.test((error as Error).message);
  }
}

function providerConfig(name: ProviderName, deviceId: number): ort.InferenceSession.ExecutionProviderConfig {
  if (name === 'cpu') return 'cpu';
  // The WebGPU provider refuses options it does not know, deviceId among them.
  if (name === 'webgpu') return 'webgpu';
  return { name, deviceId };
}

/**
 * Opens one graph on the first provider that loads. onnxruntime-node throws
 * (it does not fall back) when a GPU provider's libraries are missing or no
 * WebGPU adapter exists, so the fallback to the next provider, and finally
 * `cpu`, is ours, with a warning. `deviceOutputs` name the outputs a device
 * provider leaves in device memory (only where DEVICE_KV_PROVIDERS says so).
 */
export async function createSession(
  file: string,
  providers: readonly ProviderName[],
  options: SessionOptions,
  deviceOutputs: readonly string[] = [],
): Promise<{ session: ort.InferenceSession; provider: ProviderName }> {
  const tried = new Set<ProviderName>();
  let lastError: unknown;
  for (const provider of providers) {
    if (tried.has(provider)) continue;
    tried.add(provider);
    const missing = providerMissing(provider);
    if (missing) {
      // CUDA libraries absent is what `npm ci` installs (package.json's allowScripts), so the usual
      // state of a CPU host, not a problem: info, which the server logs at start-up and the CLI leaves
      // out. WebGPU is bundled, so asking for it on a host without Vulkan deserves a warning.
      const level = provider === 'webgpu' ? 'warn' : 'info';
      options.logger?.[level]({ provider, file }, `execution provider ${provider} unavailable: ${missing}; trying the next one`);
      lastError = new Error(`${provider} provider unavailable: ${missing}`);
      continue;
    }
    const executionProviders = provider === 'cpu' ? ['cpu'] : [providerConfig(provider, options.deviceId ?? 0), 'cpu'];
    const onDevice = DEVICE_KV_PROVIDERS.includes(provider) && deviceOutputs.length > 0;
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
        ...(onDevice ? { preferredOutputLocation: Object.fromEntries(deviceOutputs.map((name) => [name, 'gpu-buffer' as const])) } : {}),
      });
      if (EXPERIMENTAL_PROVIDERS.includes(provider) && !experimentalNoted.has(provider)) {
        experimentalNoted.add(provider);
        options.logger?.warn({ provider }, `execution provider ${provider} is experimental: correct on a software Vulkan device, not yet measured on a GPU (docs/performance.md)`);
      }
      return { session, provider };
    } catch (error) {
      lastError = error;
      if (provider !== 'cpu') {
        const reason = shortReason((error as Error).message);
        lastError = new Error(`${provider} provider unavailable: ${reason}`);
        options.logger?.warn({ provider, file, err: (error as Error).message }, `execution provider ${provider} unavailable (${reason}); trying the next one`);
      }
    }
  }
  throw new UserInputError(
    `Model pack graph ${file} cannot be loaded: ${(lastError as Error)?.message ?? 'no execution provider worked'}`,
    'model_pack_invalid',
  );
}

/** The experimental warning once per process, not once per graph. */
const experimentalNoted = new Set<ProviderName>();

/** ONNX Runtime's messages start with a source path and a failed condition; a missing adapter is said plainly. */
function shortReason(message: string): string {
  const line = message.split('\n')[0] ?? message;
  const adapter = /Failed to get a WebGPU adapter: (.*)$/.exec(line);
  return adapter ? `no WebGPU adapter: ${adapter[1]}` : line.slice(0, 200);
}
