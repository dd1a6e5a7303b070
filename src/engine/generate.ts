import type ort from 'onnxruntime-node';
import type { LoadedPack } from './pack.js';
import { type FloatData, allocFloat, argmax, floatData, floatTensor, int64Tensor, truncateKv } from './tensors.js';

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

export interface StepResult {
  /** The id the last position's logits pick (greedy). */
  next: number;
  /** last_hidden_state of the last position: the state that produced `next`. */
  hidden: FloatData;
  kv: KvState;
}

/** Runs the decoder over `count` new embedding rows after `kv`, greedy on the last row. */
export async function decoderStep(pack: LoadedPack, embeds: FloatData, count: number, kv: KvState): Promise<StepResult> {
  const { dtype } = pack.manifest;
  const { hidden: H, vocab: V, layers } = pack.manifest.decoder;
  const total = kv.length + count;
  const positions = new Array<number>(count);
  for (let i = 0; i < count; i++) positions[i] = kv.length + i;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: floatTensor(dtype, embeds, [1, count, H]),
    attention_mask: int64Tensor(new Array<number>(total).fill(1), [1, total]),
    position_ids: int64Tensor(positions, [1, count]),
    ...kv.tensors,
  };
  const out = await pack.sessions.decoder.run(feeds);
  const logits = floatData(out.logits!);
  const hiddenAll = floatData(out.last_hidden_state!);
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) tensors[`past_key_values.${i}.${part}`] = out[`present.${i}.${part}`]!;
  }
  return {
    next: argmax(logits, (count - 1) * V, V),
    hidden: hiddenAll.slice((count - 1) * H, count * H),
    kv: { tensors, length: total },
  };
}

/** Token embeddings for `ids`, as rows of the pack's dtype. */
export async function embedTokens(pack: LoadedPack, ids: readonly number[]): Promise<FloatData> {
  if (ids.length === 0) return allocFloat(pack.manifest.dtype, 0);
  const out = await pack.sessions.embedTokens.run({ input_ids: int64Tensor(ids, [1, ids.length]) });
  return floatData(out.inputs_embeds!);
}

export interface GenerationResult {
  /** Generated ids, the stopping EOS excluded. */
  ids: number[];
  /** For each `[SEG]` generated, the hidden state of the step whose logits produced it. */
  segHidden: FloatData[];
  /** The cache after the last token fed to the decoder. */
  kv: KvState;
  /** Ids whose KV is in `kv`, after the prompt (the last generated id is never fed). */
  fedIds: number[];
  prefillMs: number;
  decodeMs: number;
}

export interface GenerationInput {
  pack: LoadedPack;
  /** Rows still to be fed (the prompt after the reused prefix). */
  embeds: FloatData;
  count: number;
  kv: KvState;
  maxNewTokens: number;
  contextLength: number;
  segId: number;
  eosId: number;
  throwIfAborted: () => void;
  /** Token embedding rows (a cache in front of embed_tokens); the graph itself by default. */
  embed?: (ids: readonly number[]) => Promise<FloatData>;
}

/**
 * Greedy decoding with the KV cache. The [SEG] offset rule: the hidden state
 * used for a `[SEG]` is the one at the position whose logits produced it (the
 * token before it), not the `[SEG]` position's own.
 */
export async function generate(input: GenerationInput): Promise<GenerationResult> {
  const { pack, segId, eosId } = input;
  let started = performance.now();
  let step = await decoderStep(pack, input.embeds, input.count, input.kv);
  const prefillMs = performance.now() - started;
  started = performance.now();
  const ids: number[] = [];
  const fedIds: number[] = [];
  const segHidden: FloatData[] = [];
  while (true) {
    const token = step.next;
    if (token === eosId) break;
    ids.push(token);
    if (token === segId) segHidden.push(step.hidden);
    if (ids.length >= input.maxNewTokens || step.kv.length >= input.contextLength) break;
    input.throwIfAborted();
    const embeds = await (input.embed ? input.embed([token]) : embedTokens(pack, [token]));
    step = await decoderStep(pack, embeds, 1, step.kv);
    fedIds.push(token);
  }
  return { ids, segHidden, kv: step.kv, fedIds, prefillMs, decodeMs: performance.now() - started };
}
