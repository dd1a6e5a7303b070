import type ort from 'onnxruntime-node';
import { deviceKvSlicer } from './kv-device.js';
import type { LoadedPack } from './pack.js';
import { allocFloat, floatTensor, truncateKv } from './tensors.js';

/**
 * The decoder's KV cache. Kept opaque to the rest of the engine so that where
 * it lives is this module's business: in host memory on the CPU and CUDA
 * providers (onnxruntime-node hands every output back there), in device memory
 * on WebGPU (pack.ts asks for `present.*` as `gpu-buffer` outputs, which the
 * next step takes as past without a copy through the host).
 */
export interface KvState {
  /** `past_key_values.{i}.key|value` -> tensor [1, K, length, D]. */
  tensors: Record<string, ort.Tensor>;
  length: number;
}

const ELEMENT_BYTES: Partial<Record<ort.Tensor.Type, number>> = { float32: 4, float16: 2 };

/** Bytes the cache holds, wherever it lives (a device tensor's data cannot be read to count it). */
export function kvBytes(kv: KvState): number {
  let bytes = 0;
  for (const t of Object.values(kv.tensors)) bytes += t.size * (ELEMENT_BYTES[t.type] ?? 4);
  return bytes;
}

/** Whether the cache is in device memory (then only the device can read, cut or free it). */
export function kvOnDevice(kv: KvState): boolean {
  return Object.values(kv.tensors).some((t) => t.location !== 'cpu');
}

export function emptyKv(pack: LoadedPack): KvState {
  const { layers, kvHeads, headDim } = pack.manifest.decoder;
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) {
      // Empty host tensors even on a device provider: nothing to upload.
      tensors[`past_key_values.${i}.${part}`] = floatTensor(pack.manifest.dtype, allocFloat(pack.manifest.dtype, 0), [1, kvHeads, 0, headDim]);
    }
  }
  return { tensors, length: 0 };
}

/**
 * The first `length` positions of a cached state (a follow-up's shared prefix,
 * or the accepted part of a draft). `kv` itself is left as it was: a cache may
 * still hold it.
 */
export async function truncateKvState(pack: LoadedPack, kv: KvState, length: number): Promise<KvState> {
  if (length === kv.length) return kv;
  if (kvOnDevice(kv)) {
    const { dtype, decoder } = pack.manifest;
    const slicer = await deviceKvSlicer(Object.keys(kv.tensors).length, dtype, decoder.kvHeads, decoder.headDim);
    return { tensors: await slicer.slice(kv.tensors, length), length };
  }
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(kv.tensors)) tensors[name] = truncateKv(tensor, length);
  return { tensors, length };
}

/**
 * Frees a state's device memory now rather than when the garbage collector
 * gets to it (it does not see device memory, so a decode loop's superseded
 * caches would pile up). Host tensors are left to the collector. The state
 * must not be used afterwards.
 */
export function releaseKvState(kv: KvState): void {
  for (const tensor of Object.values(kv.tensors)) if (tensor.location !== 'cpu') tensor.dispose();
}
