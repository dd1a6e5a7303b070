import type { InferenceSession } from 'onnxruntime-node';
import { UserInputError } from '../errors.js';
import type { GraphName, PackManifest } from './manifest.js';

/**
 * The `lisa-onnx/1` graph contract (models/README.md): tensor names, element
 * types and shapes. A dimension is a fixed size, or null where the pack may
 * choose (dynamic or symbolic). Checked at load so that a pack exported wrongly
 * is refused with one clear message instead of failing mid-conversation.
 */
type ElementType = 'float32' | 'float16' | 'int64';

interface TensorSpec {
  name: string;
  type: ElementType;
  shape: (number | null)[];
}

interface GraphSpec {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export function graphContract(manifest: PackManifest): Record<GraphName, GraphSpec> {
  const dt = manifest.dtype;
  const { hidden: H, vocab: V, layers, kvHeads: K, headDim: D } = manifest.decoder;
  const S = manifest.clip.size;
  const I = manifest.imageTokens;
  const samSize = manifest.sam.size;
  const pastInputs: TensorSpec[] = [];
  const presentOutputs: TensorSpec[] = [];
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) {
      pastInputs.push({ name: `past_key_values.${i}.${part}`, type: dt, shape: [1, K, null, D] });
      presentOutputs.push({ name: `present.${i}.${part}`, type: dt, shape: [1, K, null, D] });
    }
  }
  return {
    visionEncoder: {
      inputs: [{ name: 'pixel_values', type: 'float32', shape: [1, 3, S, S] }],
      outputs: [{ name: 'image_features', type: dt, shape: [1, I, H] }],
    },
    embedTokens: {
      inputs: [{ name: 'input_ids', type: 'int64', shape: [1, null] }],
      outputs: [{ name: 'inputs_embeds', type: dt, shape: [1, null, H] }],
    },
    decoder: {
      inputs: [
        { name: 'inputs_embeds', type: dt, shape: [1, null, H] },
        { name: 'attention_mask', type: 'int64', shape: [1, null] },
        { name: 'position_ids', type: 'int64', shape: [1, null] },
        ...pastInputs,
      ],
      outputs: [
        { name: 'logits', type: dt, shape: [1, null, V] },
        { name: 'last_hidden_state', type: dt, shape: [1, null, H] },
        ...presentOutputs,
      ],
    },
    segProjection: {
      inputs: [{ name: 'seg_hidden', type: dt, shape: [null, H] }],
      outputs: [{ name: 'seg_embeddings', type: 'float32', shape: [null, 256] }],
    },
    samImageEncoder: {
      inputs: [{ name: 'pixel_values', type: 'float32', shape: [1, 3, samSize, samSize] }],
      outputs: [{ name: 'image_embeddings', type: 'float32', shape: [1, 256, 64, 64] }],
    },
    samMaskDecoder: {
      inputs: [
        { name: 'image_embeddings', type: 'float32', shape: [1, 256, 64, 64] },
        { name: 'seg_embeddings', type: 'float32', shape: [null, 256] },
      ],
      outputs: [
        { name: 'low_res_masks', type: 'float32', shape: [null, 1, 256, 256] },
        { name: 'iou_predictions', type: 'float32', shape: [null, 1] },
      ],
    },
  };
}

function describeShape(shape: readonly (number | string | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : String(d))).join(',')}]`;
}

function checkTensors(
  file: string,
  direction: 'input' | 'output',
  expected: TensorSpec[],
  actual: readonly InferenceSession.ValueMetadata[],
): void {
  const byName = new Map(actual.map((m) => [m.name, m]));
  for (const spec of expected) {
    const meta = byName.get(spec.name);
    const want = `${spec.type} ${describeShape(spec.shape)}`;
    if (!meta) {
      const have = actual.map((m) => m.name).join(', ') || 'none';
      throw new UserInputError(
        `Model pack graph ${file}: missing ${direction} "${spec.name}" (expected ${want}; the graph has ${have}).`,
        'model_pack_invalid',
      );
    }
    if (!meta.isTensor) {
      throw new UserInputError(`Model pack graph ${file}: ${direction} "${spec.name}" is not a tensor (expected ${want}).`, 'model_pack_invalid');
    }
    const shapeKnown = meta.shape.length > 0;
    const rankOk = !shapeKnown || meta.shape.length === spec.shape.length;
    const dimsOk =
      rankOk && spec.shape.every((dim, i) => dim === null || !shapeKnown || typeof meta.shape[i] !== 'number' || meta.shape[i] === dim);
    if (meta.type !== spec.type || !rankOk || !dimsOk) {
      throw new UserInputError(
        `Model pack graph ${file}: ${direction} "${spec.name}" is ${meta.type} ${describeShape(meta.shape)}, expected ${want}.`,
        'model_pack_invalid',
      );
    }
  }
  if (direction === 'input') {
    const extra = actual.filter((m) => !expected.some((s) => s.name === m.name));
    if (extra.length > 0) {
      // The engine feeds exactly the contract's inputs; an extra input would fail at run time.
      throw new UserInputError(
        `Model pack graph ${file}: unexpected input "${extra[0]!.name}" (the contract's inputs are ${expected.map((s) => s.name).join(', ')}).`,
        'model_pack_invalid',
      );
    }
  }
}

/** Refuses a session whose inputs/outputs differ from the contract, naming the file and tensor. */
export function checkGraph(file: string, spec: GraphSpec, session: InferenceSession): void {
  checkTensors(file, 'input', spec.inputs, session.inputMetadata);
  checkTensors(file, 'output', spec.outputs, session.outputMetadata);
}
