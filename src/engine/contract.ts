import type { InferenceSession } from 'onnxruntime-node';
import { UserInputError } from '../errors.js';
import type { GraphName, PackManifest } from './manifest.js';

/**
 * The `lisa-onnx/1` graph contract (models/README.md): tensor names, element
 * types and shapes. A dimension is a fixed size, or a name where the pack may
 * choose (dynamic or symbolic; the same name is the same length, and the
 * generators declare it under that name). Checked at load so that a pack
 * exported wrongly is refused with one clear message instead of failing
 * mid-conversation. The generators (models/generator) declare their graphs'
 * inputs and outputs from it.
 */
type ElementType = 'float32' | 'float16' | 'int64';

export interface TensorSpec {
  name: string;
  type: ElementType;
  shape: (number | string)[];
}

/** SAM's fixed sizes, whatever its input frame: image embeddings [1, 256, 64, 64], prompts of 256, masks of 256 x 256. */
export const SAM_EMBEDDINGS_SHAPE = [1, 256, 64, 64];
export const SAM_PROMPT_DIM = 256;
export const SAM_LOW_RES = 256;

export interface GraphSpec {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** The decoder's form as lisa.json states it, checked before the tensors (one message for a mismatch). */
  form?: DecoderForm;
  /** Whether lisa.json says the decoder holds the greedy Loop (decoder.onDeviceLoop), checked the same way. */
  onDeviceLoop?: boolean;
}

type DecoderForm = PackManifest['decoder']['form'];

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
      pastInputs.push({ name: `past_key_values.${i}.${part}`, type: dt, shape: [1, K, 'past_sequence', D] });
      presentOutputs.push({ name: `present.${i}.${part}`, type: dt, shape: [1, K, 'total_sequence', D] });
    }
  }
  return {
    visionEncoder: {
      inputs: [{ name: 'pixel_values', type: 'float32', shape: [1, 3, S, S] }],
      outputs: [{ name: 'image_features', type: dt, shape: [1, I, H] }],
    },
    embedTokens: {
      inputs: [{ name: 'input_ids', type: 'int64', shape: [1, 'sequence'] }],
      outputs: [{ name: 'inputs_embeds', type: dt, shape: [1, 'sequence', H] }],
    },
    decoder: withDeviceLoop(manifest.decoder.onDeviceLoop, dt, H, decoderContract(manifest.decoder.form, dt, H, V, pastInputs, presentOutputs)),
    segProjection: {
      inputs: [{ name: 'seg_hidden', type: dt, shape: ['num_seg', H] }],
      outputs: [{ name: 'seg_embeddings', type: 'float32', shape: ['num_seg', SAM_PROMPT_DIM] }],
    },
    samImageEncoder: {
      inputs: [{ name: 'pixel_values', type: 'float32', shape: [1, 3, samSize, samSize] }],
      outputs: [{ name: 'image_embeddings', type: 'float32', shape: SAM_EMBEDDINGS_SHAPE }],
    },
    samMaskDecoder: {
      inputs: [
        { name: 'image_embeddings', type: 'float32', shape: SAM_EMBEDDINGS_SHAPE },
        { name: 'seg_embeddings', type: 'float32', shape: ['num_seg', SAM_PROMPT_DIM] },
      ],
      outputs: [
        { name: 'low_res_masks', type: 'float32', shape: ['num_seg', 1, SAM_LOW_RES, SAM_LOW_RES] },
        { name: 'iou_predictions', type: 'float32', shape: ['num_seg', 1] },
      ],
    },
  };
}

/**
 * plain: logits for every new row; the engine picks the greedy id.
 * fused: the graph picks it (ArgMax) for the last `scored_rows` rows only, and
 * returns their ids and final-norm hidden states; rotary positions come from
 * the all-ones attention_mask, so there is no position_ids.
 */
function decoderContract(form: DecoderForm, dt: ElementType, H: number, V: number, past: TensorSpec[], present: TensorSpec[]): GraphSpec {
  const embeds: TensorSpec = { name: 'inputs_embeds', type: dt, shape: [1, 'sequence', H] };
  const mask: TensorSpec = { name: 'attention_mask', type: 'int64', shape: [1, 'total_sequence'] };
  if (form === 'fused') {
    return {
      form,
      inputs: [embeds, mask, ...past, { name: 'scored_rows', type: 'int64', shape: [1] }],
      outputs: [
        { name: 'next_ids', type: 'int64', shape: [1, 'scored'] },
        { name: 'last_hidden_state', type: dt, shape: [1, 'scored', H] },
        ...present,
      ],
    };
  }
  return {
    form,
    inputs: [embeds, mask, { name: 'position_ids', type: 'int64', shape: [1, 'sequence'] }, ...past],
    outputs: [{ name: 'logits', type: dt, shape: [1, 'sequence', V] }, { name: 'last_hidden_state', type: dt, shape: [1, 'sequence', H] }, ...present],
  };
}

/**
 * onDeviceLoop (models/converter/graphs/llama-loop.ts): greedy decoding in an
 * ONNX Loop after the step. max_new_tokens = Loop iterations (0: a plain step),
 * eos_id ends it; generated_ids [N] with generated_hidden [N,H] (row j chose id j).
 */
function withDeviceLoop(onDeviceLoop: boolean, dt: ElementType, H: number, spec: GraphSpec): GraphSpec {
  if (!onDeviceLoop) return { ...spec, onDeviceLoop };
  return {
    ...spec,
    onDeviceLoop,
    inputs: [...spec.inputs, { name: 'max_new_tokens', type: 'int64', shape: [1] }, { name: 'eos_id', type: 'int64', shape: [1] }],
    outputs: [...spec.outputs, { name: 'generated_ids', type: 'int64', shape: ['generated'] }, { name: 'generated_hidden', type: dt, shape: ['generated', H] }],
  };
}

/** A decoder graph's form, from the one input only the fused form has. */
function graphForm(session: InferenceSession): DecoderForm {
  return session.inputNames.includes('scored_rows') ? 'fused' : 'plain';
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
    const want = `${spec.type} ${describeShape(spec.shape.map((d) => (typeof d === 'number' ? d : null)))}`;
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
      rankOk && spec.shape.every((dim, i) => typeof dim !== 'number' || !shapeKnown || typeof meta.shape[i] !== 'number' || meta.shape[i] === dim);
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
  if (spec.form && graphForm(session) !== spec.form) {
    throw new UserInputError(
      `Model pack graph ${file} is a ${graphForm(session)} decoder, but lisa.json says decoder.form "${spec.form}"` +
        `${spec.form === 'plain' ? ' (the default when absent)' : ''}: set decoder.form to "${graphForm(session)}", or convert the pack again.`,
      'model_pack_invalid',
    );
  }
  const hasLoop = session.inputNames.includes('max_new_tokens');
  if (spec.onDeviceLoop !== undefined && hasLoop !== spec.onDeviceLoop) {
    throw new UserInputError(
      `Model pack graph ${file} ${hasLoop ? 'holds a' : 'has no'} greedy decoding Loop, but lisa.json says decoder.onDeviceLoop ${spec.onDeviceLoop}` +
        `${spec.onDeviceLoop ? '' : ' (the default when absent)'}: set it to ${hasLoop}, or convert the pack again.`,
      'model_pack_invalid',
    );
  }
  checkTensors(file, 'input', spec.inputs, session.inputMetadata);
  checkTensors(file, 'output', spec.outputs, session.outputMetadata);
}

/**
 * onnxruntime's GroupQueryAttention has CUDA kernels for float16 and bfloat16
 * only: a float32 fused decoder on CUDA would run its attention on the CPU,
 * copying every layer's cache across PCIe each step. Refused with the fixes.
 */
export function checkDecoderProvider(manifest: PackManifest, provider: string): void {
  if (manifest.decoder.form !== 'fused' || manifest.dtype !== 'float32' || (provider !== 'cuda' && provider !== 'tensorrt')) return;
  throw new UserInputError(
    `Model pack "${manifest.name}" has a float32 fused decoder, which the ${provider} provider cannot run (onnxruntime's GroupQueryAttention ` +
      'on CUDA takes float16 only): convert it with --dtype float16 (or --decoder plain), or set model.providers to ["cpu"].',
    'model_pack_invalid',
  );
}
