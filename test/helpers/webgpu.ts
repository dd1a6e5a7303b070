/**
 * Whether the WebGPU tests can run here: onnxruntime-node's WebGPU provider
 * needs a Vulkan device on Linux. A CPU machine has one through Mesa's
 * lavapipe (a software Vulkan, mesa-vulkan-drivers 24 or later: Debian
 * bookworm's 22.3 lacks features Dawn requires), which .ci/run installs. An
 * absent adapter is a legitimate skip, printed with its reason, except in CI
 * (CI=true), where .ci/run installs lavapipe: there a missing adapter fails
 * the run instead of hiding the WebGPU path.
 */
import ort from 'onnxruntime-node';
import { GraphBuilder } from '../../src/engine/onnx-builder.js';
import { providerMissing } from '../../src/engine/providers.js';

/** Opens a one-node graph on WebGPU: the error says why not (no adapter, no Vulkan). */
async function probe(): Promise<string | undefined> {
  const missing = providerMissing('webgpu');
  if (missing) return missing;
  const g = new GraphBuilder('probe');
  g.output('y', g.op('Relu', [g.input('x', 'float32', [1])]), 'float32', [1]);
  try {
    const session = await ort.InferenceSession.create(g.toBytes(), { executionProviders: ['webgpu'], logSeverityLevel: 4 });
    await session.release();
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    return /adapter: (.*)/.exec(message)?.[1]?.trim() ?? message.split('\n')[0];
  }
}

export async function webgpuAvailability(): Promise<{ skip: boolean; reason?: string }> {
  const why = await probe();
  if (!why) return { skip: false };
  if (process.env.CI === 'true') throw new Error(`WebGPU has no adapter in CI (.ci/run installs Mesa's lavapipe from bookworm-backports): ${why}`);
  const reason = `no WebGPU adapter here (${why}; on a CPU machine install Mesa's lavapipe, mesa-vulkan-drivers >= 24); skipping the WebGPU tests`;
  console.warn(reason);
  return { skip: true, reason };
}
