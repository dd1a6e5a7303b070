import ort from 'onnxruntime-node';
import { GraphBuilder } from './onnx-builder.js';
import type { PackDtype } from './floats.js';

/**
 * Truncation of a KV cache whose tensors live in device memory (the WebGPU
 * provider's `gpu-buffer` outputs). onnxruntime-node cannot download such a
 * tensor (its download() is not implemented and aborts the process), and a
 * download would cost a round trip of the whole cache anyway, so the first
 * rows are cut on the device by a one-node-per-tensor Slice graph whose
 * outputs stay there too.
 */
export interface DeviceKvSlicer {
  /** `tensors` [1, K, L, D] each -> their first `length` positions, same names, still on the device. */
  slice(tensors: Record<string, ort.Tensor>, length: number): Promise<Record<string, ort.Tensor>>;
}

const slicers = new Map<string, Promise<DeviceKvSlicer>>();

/** One slicer per tensor count, dtype and shape; its session lives as long as the process. */
export function deviceKvSlicer(count: number, dtype: PackDtype, kvHeads: number, headDim: number): Promise<DeviceKvSlicer> {
  const key = `${count}/${dtype}/${kvHeads}/${headDim}`;
  let slicer = slicers.get(key);
  if (!slicer) {
    slicer = openSlicer(count, dtype, kvHeads, headDim);
    slicers.set(key, slicer);
    slicer.catch(() => slicers.delete(key));
  }
  return slicer;
}

async function openSlicer(count: number, dtype: PackDtype, kvHeads: number, headDim: number): Promise<DeviceKvSlicer> {
  const g = new GraphBuilder('kv_slice');
  const length = g.input('length', 'int64', [1]);
  const zero = g.int64([0]);
  const axis = g.int64([2]);
  for (let i = 0; i < count; i++) {
    const x = g.input(`x.${i}`, dtype, [1, kvHeads, 'past', headDim]);
    g.output(`y.${i}`, g.op('Slice', [x, zero, length, axis]), dtype, [1, kvHeads, 'kept', headDim]);
  }
  const session = await ort.InferenceSession.create(g.toBytes(), {
    executionProviders: ['webgpu'],
    preferredOutputLocation: 'gpu-buffer',
    logSeverityLevel: 3,
  });
  return {
    async slice(tensors, kept) {
      const names = Object.keys(tensors);
      if (names.length !== count) throw new Error(`KV slicer made for ${count} tensors, given ${names.length}`);
      const feeds: Record<string, ort.Tensor> = { length: new ort.Tensor('int64', BigInt64Array.of(BigInt(kept)), [1]) };
      names.forEach((name, i) => (feeds[`x.${i}`] = tensors[name]!));
      const out = await session.run(feeds);
      return Object.fromEntries(names.map((name, i) => [name, out[`y.${i}`]!]));
    },
  };
}
