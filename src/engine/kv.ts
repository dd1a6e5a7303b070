import type ort from 'onnxruntime-node';
import type { LoadedPack } from './pack.js';
import { allocFloat, floatTensor, truncateKv } from './tensors.js';

/**
 * The decoder's KV cache. Kept opaque to the rest of the engine so that a pack
 * variant can hold it on the device (IO binding, fixed-size buffers) without
 * changing anything above this module; today onnxruntime-node hands every
 * output back in host memory, so it lives there.
 */
export interface KvState {
  /** `past_key_values.{i}.key|value` -> tensor [1, K, length, D]. */
  tensors: Record<string, ort.Tensor>;
  length: number;
}

export function kvBytes(kv: KvState): number {
  let bytes = 0;
  for (const t of Object.values(kv.tensors)) bytes += (t.data as ArrayBufferView).byteLength;
  return bytes;
}

export function emptyKv(pack: LoadedPack): KvState {
  const { layers, kvHeads, headDim } = pack.manifest.decoder;
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) {
      tensors[`past_key_values.${i}.${part}`] = floatTensor(pack.manifest.dtype, allocFloat(pack.manifest.dtype, 0), [1, kvHeads, 0, headDim]);
    }
  }
  return { tensors, length: 0 };
}

/** The first `length` positions of a cached state (a follow-up's shared prefix). */
export function truncateKvState(kv: KvState, length: number): KvState {
  if (length === kv.length) return kv;
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of Object.entries(kv.tensors)) tensors[name] = truncateKv(tensor, length);
  return { tensors, length };
}
