import type ort from 'onnxruntime-node';
import type { GenerationInput, GenerationResult, StepResult } from './generation.js';
import { deviceLoopFeeds, generateOnDevice, useDeviceLoop } from './generate-loop.js';
import { lookupDraft } from './lookup.js';
import { type LoadedPack, runGraph } from './pack.js';
import { type KvState, releaseKvState, truncateKvState } from './kv.js';
import { type FloatData, allocFloat, argmax, floatData, floatTensor, int64Tensor } from './tensors.js';

/**
 * Runs the decoder over `count` new embedding rows after `kv`, greedy on the
 * last `scored` rows (a prefill needs only its last; a draft check needs all).
 */
export async function decoderStep(pack: LoadedPack, embeds: FloatData, count: number, kv: KvState, scored = 1): Promise<StepResult> {
  const { dtype } = pack.manifest;
  const { hidden: H, vocab: V, layers, form } = pack.manifest.decoder;
  const total = kv.length + count;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: floatTensor(dtype, embeds, [1, count, H]),
    attention_mask: int64Tensor(new Array<number>(total).fill(1), [1, total]),
    ...kv.tensors,
  };
  if (form === 'fused') {
    // The graph chooses (ArgMax) and normalises only the scored rows; positions follow from the mask.
    feeds.scored_rows = int64Tensor([scored], [1]);
    // A graph with the on-device loop (generate-loop.ts) is a plain step when the loop runs 0 times.
    if (pack.manifest.decoder.onDeviceLoop) Object.assign(feeds, deviceLoopFeeds(0, -1));
  } else {
    const positions = new Array<number>(count);
    for (let i = 0; i < count; i++) positions[i] = kv.length + i;
    feeds.position_ids = int64Tensor(positions, [1, count]);
  }
  const out = await runGraph(pack, 'decoder', feeds);
  const hiddenAll = floatData(out.last_hidden_state!);
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) tensors[`past_key_values.${i}.${part}`] = out[`present.${i}.${part}`]!;
  }
  const next: number[] = [];
  const hidden: FloatData[] = [];
  // last_hidden_state holds every new row (plain) or the scored rows only (fused).
  const first = hiddenAll.length / H - scored;
  const logits = form === 'fused' ? undefined : floatData(out.logits!);
  const chosen = form === 'fused' ? (out.next_ids!.data as BigInt64Array) : undefined;
  for (let j = 0; j < scored; j++) {
    next.push(chosen ? Number(chosen[j]!) : argmax(logits!, (count - scored + j) * V, V));
    hidden.push(hiddenAll.slice((first + j) * H, (first + j + 1) * H));
  }
  return { next, hidden, kv: { tensors, length: total } };
}

/** Token embeddings for `ids`, as rows of the pack's dtype. */
export async function embedTokens(pack: LoadedPack, ids: readonly number[]): Promise<FloatData> {
  if (ids.length === 0) return allocFloat(pack.manifest.dtype, 0);
  const out = await runGraph(pack, 'embedTokens', { input_ids: int64Tensor(ids, [1, ids.length]) });
  return floatData(out.inputs_embeds!);
}

/**
 * Greedy decoding with the KV cache and prompt-lookup drafts (lookup.ts). The
 * [SEG] offset rule: the hidden state used for a `[SEG]` is the one at the
 * position whose logits produced it (the token before it), not the `[SEG]`
 * position's own.
 *
 * A run feeds the last chosen token and a draft of the next ones; row i's
 * logits give the greedy choice after draft token i - 1, so the draft is
 * accepted up to its first token that differs from the choice, and that
 * choice is the next token. The cache keeps only the accepted positions.
 */
export async function generate(input: GenerationInput): Promise<GenerationResult> {
  const { pack, segId, eosId, maxNewTokens, contextLength } = input;
  const embed = input.embed ?? ((ids: readonly number[]) => embedTokens(pack, ids));
  let started = performance.now();
  const prefill = await decoderStep(pack, input.embeds, input.count, input.kv, input.given ? input.given.length + 1 : 1);
  const prefillMs = performance.now() - started;
  if (input.given) return givenAnswer(input.given, prefill, input.segId, eosId, prefillMs);
  if (pack.manifest.decoder.onDeviceLoop && (input.deviceLoop ?? useDeviceLoop(pack, input.draftLength))) return generateOnDevice(input, prefill, prefillMs, embed);
  started = performance.now();
  const ids: number[] = [];
  const fedIds: number[] = [];
  const segHidden: FloatData[] = [];
  const drafts = { proposed: 0, accepted: 0 };
  let decodeRuns = 0;
  let kv = prefill.kv;
  const emit = (token: number, hidden: FloatData) => {
    ids.push(token);
    if (token === segId) segHidden.push(hidden);
  };
  // The chosen token not fed yet, with the hidden state that chose it.
  let next = { token: prefill.next[0]!, hidden: prefill.hidden[0]! };
  while (next.token !== eosId) {
    emit(next.token, next.hidden);
    if (ids.length >= maxNewTokens || kv.length >= contextLength) break;
    input.throwIfAborted();
    const room = Math.min(input.draftLength ?? 0, maxNewTokens - ids.length, contextLength - kv.length - 1);
    const draft = lookupDraft(input.context ?? [], ids, room);
    const fed = [next.token, ...draft];
    const step = await decoderStep(pack, await embed(fed), fed.length, kv, fed.length);
    decodeRuns++;
    let accepted = 0;
    while (accepted < draft.length && step.next[accepted] === draft[accepted]) accepted++;
    drafts.proposed += draft.length;
    drafts.accepted += accepted;
    // Positions of this run that stay cached: `next`, then accepted draft tokens up to a stop.
    // As without drafts, neither EOS nor a token that reaches the limit is ever fed.
    let kept = 1;
    let stopped = false;
    for (let i = 0; i < accepted; i++) {
      if (draft[i] !== eosId) emit(draft[i]!, step.hidden[i]!);
      if (draft[i] === eosId || ids.length >= maxNewTokens) {
        stopped = true;
        break;
      }
      kept++;
    }
    // Positions after the kept ones came from a wrong guess or lie past the stop.
    const keptKv = await truncateKvState(pack, step.kv, kv.length + kept);
    // Superseded caches free their device memory now (kv.ts); nothing else holds them.
    if (keptKv !== step.kv) releaseKvState(step.kv);
    releaseKvState(kv);
    kv = keptKv;
    fedIds.push(...fed.slice(0, kept));
    if (stopped) break;
    next = { token: step.next[accepted]!, hidden: step.hidden[accepted]! };
  }
  return { ids, segHidden, kv, fedIds, prefillMs, decodeMs: performance.now() - started, decodeRuns, drafts };
}

/**
 * A given answer read in one prefill: row j of the scored rows (the last
 * prompt row, then the answer's) is the state that would have chosen answer
 * token j, so [SEG] j takes row j's hidden state, as when generated.
 */
function givenAnswer(given: readonly number[], prefill: StepResult, segId: number, eosId: number, prefillMs: number): GenerationResult {
  const stop = given.indexOf(eosId);
  const ids = given.slice(0, stop < 0 ? given.length : stop);
  const segHidden = ids.flatMap((id, j) => (id === segId ? [prefill.hidden[j]!] : []));
  return { ids, segHidden, kv: prefill.kv, fedIds: [...given], prefillMs, decodeMs: 0, decodeRuns: 0, drafts: { proposed: 0, accepted: 0 } };
}
