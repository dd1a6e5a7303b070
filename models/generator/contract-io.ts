/**
 * A generated graph's inputs and outputs, declared exactly as the engine's
 * contract (src/engine/contract.ts) states them: names, element types and
 * shapes come from there, in its order, so a generator never spells a tensor
 * name of its own.
 */
import type { GraphSpec } from '../../src/engine/contract.js';
import type { GraphBuilder } from '../../src/engine/onnx-builder.js';

/** Declares every input of `spec`; returns their value names in the contract's order. */
export function contractInputs(g: GraphBuilder, spec: GraphSpec): string[] {
  return spec.inputs.map((t) => g.input(t.name, t.type, t.shape));
}

/** Declares every output of `spec`, fed by `sources` in the contract's order. */
export function contractOutputs(g: GraphBuilder, spec: GraphSpec, sources: readonly string[]): void {
  if (sources.length !== spec.outputs.length) {
    throw new Error(`the contract has ${spec.outputs.length} outputs (${spec.outputs.map((t) => t.name).join(', ')}), ${sources.length} given`);
  }
  spec.outputs.forEach((t, i) => g.output(t.name, sources[i]!, t.type, t.shape));
}
