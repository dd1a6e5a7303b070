import type { KvState } from './kv.js';
import type { LoadedPack } from './pack.js';
import type { FloatData } from './tensors.js';

/**
 * What decoding takes and gives, shared by the step loop (generate.ts) and
 * the loop inside the graph (generate-loop.ts), which generate() calls.
 */

export interface StepResult {
  /** For each scored row, in order: the id its logits pick (greedy). */
  next: number[];
  /** last_hidden_state of each scored row: the state that produced its `next`. */
  hidden: FloatData[];
  kv: KvState;
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
  /** Decoder runs after the prefill (fewer than the tokens when drafts were accepted). */
  decodeRuns: number;
  /** Draft tokens proposed and accepted (see lookup.ts). */
  drafts: { proposed: number; accepted: number };
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
  /** The whole prompt's ids (image slots negative), where drafts are looked up. */
  context?: readonly number[];
  /** Most draft tokens checked per decoder run; 0 decodes one token per run. */
  draftLength?: number;
  /**
   * Teacher forcing: an answer whose ids follow the prompt's rows in `embeds`
   * (so `count` includes them). The prefill scores them instead of generating.
   */
  given?: readonly number[];
  /** Decode with the pack's Loop graph where it has one (true) or the step loop (false); absent: the provider's policy (generate-loop.ts). */
  deviceLoop?: boolean;
}
