/**
 * Runs a converted pack's graphs one by one on the reference's inputs, so
 * each graph is compared with the reference on its own (a wrong resample or
 * RMSNorm epsilon shows up in the graph that has it, not only as a token
 * that differs many steps later).
 */
import ort from 'onnxruntime-node';
import { decoderStep } from '../../src/engine/generate.js';
import { emptyKv } from '../../src/engine/kv.js';
import { type LoadedPack } from '../../src/engine/pack.js';
import { IMAGE_SLOT } from '../../src/engine/tokenizer.js';
import { floatToHalf, halfToFloat } from '../../src/engine/floats.js';
import { argmax, floatData, int64Tensor } from '../../src/engine/tensors.js';

export function toNumbers(data: Float32Array | Uint16Array): Float32Array {
  if (data instanceof Float32Array) return data;
  return Float32Array.from(data, halfToFloat);
}

function fromNumbers(dtype: 'float32' | 'float16', values: Float32Array): ort.Tensor['data'] {
  return dtype === 'float32' ? values : Uint16Array.from(values, floatToHalf);
}

export async function runGraph(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const out = await session.run(feeds);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, toNumbers(floatData(v))]));
}

export const f32 = (data: Float32Array, dims: number[]) => new ort.Tensor('float32', data, dims);

/**
 * The decoder over the whole conversation at once (prompt with the image rows,
 * then every generated token but the last): logits of the last prompt row and
 * of each generated row are the logits of each greedy step (teacher forcing).
 * A fused decoder returns no logits: its greedy `ids` for those rows instead.
 */
export async function teacherForced(
  pack: LoadedPack,
  promptIds: readonly number[],
  generated: readonly number[],
  imageFeatures: Float32Array,
): Promise<{ stepLogits: Float32Array[]; hidden: Float32Array[]; ids: number[] }> {
  const { hidden: H, vocab: V, layers, kvHeads: K, headDim: D } = pack.manifest.decoder;
  const I = pack.manifest.imageTokens;
  const dtype = pack.manifest.dtype;
  const ids = [...promptIds, ...generated.slice(0, -1)];
  const textIds = ids.filter((id) => id !== IMAGE_SLOT);
  const embedded = await runGraph(pack.sessions.embedTokens, { input_ids: int64Tensor(textIds, [1, textIds.length]) });
  const textRows = embedded.inputs_embeds!;
  const rows: Float32Array[] = [];
  let t = 0;
  for (const id of ids) {
    if (id === IMAGE_SLOT) for (let r = 0; r < I; r++) rows.push(imageFeatures.subarray(r * H, (r + 1) * H));
    else rows.push(textRows.subarray(t * H, (t++ + 1) * H));
  }
  const T = rows.length;
  const embeds = new Float32Array(T * H);
  rows.forEach((row, i) => embeds.set(row, i * H));
  if (pack.manifest.decoder.form === 'fused') {
    // Through the engine's step, which feeds whatever else the pack's fused graph takes.
    const step = await decoderStep(pack, fromNumbers(dtype, embeds) as Float32Array | Uint16Array, T, emptyKv(pack), generated.length);
    return { stepLogits: [], hidden: step.hidden.map((h) => toNumbers(h)), ids: step.next };
  }
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor(dtype, fromNumbers(dtype, embeds), [1, T, H]),
    attention_mask: int64Tensor(new Array<number>(T).fill(1), [1, T]),
    position_ids: int64Tensor(Array.from({ length: T }, (_, i) => i), [1, T]),
  };
  const empty = dtype === 'float32' ? new Float32Array(0) : new Uint16Array(0);
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) feeds[`past_key_values.${i}.${part}`] = new ort.Tensor(dtype, empty, [1, K, 0, D]);
  }
  const out = await runGraph(pack.sessions.decoder, feeds);
  const promptRows = T - (generated.length - 1);
  const stepLogits: Float32Array[] = [];
  const hidden: Float32Array[] = [];
  const chosen: number[] = [];
  for (let step = 0; step < generated.length; step++) {
    const row = promptRows - 1 + step;
    stepLogits.push(out.logits!.slice(row * V, (row + 1) * V));
    hidden.push(out.last_hidden_state!.slice(row * H, (row + 1) * H));
    chosen.push(argmax(out.logits!, row * V, V));
  }
  return { stepLogits, hidden, ids: chosen };
}
