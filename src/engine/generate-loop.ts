import type ort from 'onnxruntime-node';
import type { GenerationInput, GenerationResult, StepResult } from './generation.js';
import { type KvState, releaseKvState } from './kv.js';
import { type LoadedPack, runGraph } from './pack.js';
import { type FloatData, floatData, floatTensor, int64Tensor } from './tensors.js';

/**
 * Greedy decoding inside the decoder graph (a pack with decoder.onDeviceLoop:
 * models/converter/graphs/llama-loop.ts). One run() feeds the last chosen id
 * and lets the graph's ONNX Loop choose and feed the next ones, the KV cache
 * as loop state, until EOS or the run's budget; only the ids, their hidden
 * states and the cache after the run come back. On a GPU that removes the
 * per-token copy of the whole cache to the host and back (onnxruntime-node
 * 1.30's CUDA outputs always land in host memory).
 *
 * Results are the step loop's (generate.ts): same ids, same [SEG] hidden
 * states (row j of generated_hidden chose generated_ids[j]), same cache and
 * fed ids; EOS and the last token are never fed.
 */

/**
 * How many ids one run() may choose. onnxruntime-node 1.30 cannot stop a run
 * once started (its RunOptions has no `terminate`), so a cancelled turn waits
 * for the run in progress: runs are sized from the speed of the previous one
 * to last about RUN_TARGET_MS, between 1 and MAX_RUN_IDS ids (each run
 * boundary costs one copy of the cache out and back in).
 */
const RUN_TARGET_MS = 1000;
const FIRST_RUN_IDS = 8;
export const MAX_RUN_IDS = 64;

/**
 * Whether generate() decodes with the Loop graph (where the pack has one) or
 * the step loop, which then feeds the same graph with max_new_tokens 0.
 * - cuda: onnxruntime-node 1.30 returns every CUDA output in host memory, so
 *   each step of the step loop copies the whole cache out and back (LLaMA-7B
 *   float16: 512 KiB a position, about 300 MiB each way at 600 positions);
 *   the Loop (a CUDA kernel in onnxruntime, its loop state on the device)
 *   copies it once a run (up to MAX_RUN_IDS tokens).
 * - cpu: measured (docs/performance.md, "Decoding inside the graph"): the Loop
 *   spends less CPU per token than the step loop without drafts; with drafts
 *   configured the step loop can accept several tokens a run, which depends
 *   on the text, so a configured draft length keeps the step loop.
 * - webgpu: the step loop already keeps `present.*` on the device (gpu-buffer
 *   outputs), and whether the Loop itself runs on WebGPU is unverified.
 * - tensorrt: its sessions fall back to the CPU, not CUDA, for what TensorRT
 *   cannot take (GroupQueryAttention and the Loop around it).
 */
export function useDeviceLoop(pack: LoadedPack, draftLength = 0): boolean {
  if (pack.provider === 'cuda') return true;
  return pack.provider === 'cpu' && draftLength === 0;
}

/** The Loop graph's extra inputs: iterations after the step (0 = a plain step) and the id that ends them. */
export function deviceLoopFeeds(maxNewTokens: number, eosId: number): Record<string, ort.Tensor> {
  return { max_new_tokens: int64Tensor([maxNewTokens], [1]), eos_id: int64Tensor([eosId], [1]) };
}

/**
 * The decoding after `prefill` (a plain step over the prompt rows), in runs of
 * the Loop graph (`runIds` ids each when given, else sized as above), with the
 * step loop's limits: a token is emitted, then decoding stops once
 * `maxNewTokens` are out or the cache holds `contextLength` positions.
 */
export async function generateOnDevice(
  input: GenerationInput,
  prefill: StepResult,
  prefillMs: number,
  embed: (ids: readonly number[]) => Promise<FloatData>,
  runIds?: number,
): Promise<GenerationResult> {
  const started = performance.now();
  const { pack, segId, eosId } = input;
  const H = pack.manifest.decoder.hidden;
  const limit = Math.min(input.maxNewTokens, input.contextLength - prefill.kv.length + 1);
  const ids: number[] = [];
  const fedIds: number[] = [];
  const segHidden: FloatData[] = [];
  let kv = prefill.kv;
  let decodeRuns = 0;
  let nextRunIds = runIds ?? FIRST_RUN_IDS;
  // The chosen id not fed yet, and the hidden state that chose it.
  let pending = { token: prefill.next[0]!, hidden: prefill.hidden[0]! };
  const emit = (token: number, hidden: () => FloatData) => {
    ids.push(token);
    if (token === segId) segHidden.push(hidden());
  };
  while (pending.token !== eosId) {
    emit(pending.token, () => pending.hidden);
    if (ids.length >= limit) break;
    input.throwIfAborted();
    // This run feeds `pending`, then its Loop feeds each id it chooses but the last.
    const budget = Math.min(nextRunIds, limit - ids.length);
    const runStarted = performance.now();
    const run = await loopRun(pack, await embed([pending.token]), kv, budget - 1, eosId);
    const msPerId = (performance.now() - runStarted) / run.ids.length;
    nextRunIds = runIds ?? Math.max(1, Math.min(MAX_RUN_IDS, Math.floor(RUN_TARGET_MS / msPerId)));
    decodeRuns++;
    fedIds.push(pending.token);
    // The superseded cache frees its device memory now (kv.ts); only this loop held it.
    releaseKvState(kv);
    kv = run.kv;
    const last = run.ids.length - 1;
    for (let j = 0; j < last; j++) {
      emit(run.ids[j]!, () => run.hidden.slice(j * H, (j + 1) * H));
      fedIds.push(run.ids[j]!);
    }
    pending = { token: run.ids[last]!, hidden: run.hidden.slice(last * H, (last + 1) * H) };
  }
  const drafts = { proposed: 0, accepted: 0 };
  return { ids, segHidden, kv, fedIds, prefillMs, decodeMs: performance.now() - started, decodeRuns, drafts };
}

/** One run: feeds `embeds` (one row) after `kv`, then up to `iterations` Loop steps. */
async function loopRun(pack: LoadedPack, embeds: FloatData, kv: KvState, iterations: number, eosId: number): Promise<{ ids: number[]; hidden: FloatData; kv: KvState }> {
  const { dtype } = pack.manifest;
  const { hidden: H, layers } = pack.manifest.decoder;
  const total = kv.length + 1;
  const out = await runGraph(pack, 'decoder', {
    inputs_embeds: floatTensor(dtype, embeds, [1, 1, H]),
    attention_mask: int64Tensor(new Array<number>(total).fill(1), [1, total]),
    ...kv.tensors,
    scored_rows: int64Tensor([1], [1]),
    ...deviceLoopFeeds(iterations, eosId),
  });
  const ids = Array.from(out.generated_ids!.data as BigInt64Array, Number);
  const tensors: Record<string, ort.Tensor> = {};
  for (let i = 0; i < layers; i++) {
    for (const part of ['key', 'value']) tensors[`past_key_values.${i}.${part}`] = out[`present.${i}.${part}`]!;
  }
  // The run fed its input row and every chosen id but the last.
  return { ids, hidden: floatData(out.generated_hidden!), kv: { tensors, length: kv.length + ids.length } };
}
