/**
 * The fused decoder with greedy decoding inside the graph: after the step over
 * `inputs_embeds` (llama-fused.ts), an ONNX Loop feeds each chosen id back —
 * embedding row from the table, the same layer stack on one row, ArgMax — until
 * it chooses `eos_id` or has run `max_new_tokens` times. The KV cache is loop
 * state: one run() returns the ids, the hidden states that chose them and the
 * cache after the loop, so on a GPU the cache never crosses to the host
 * between tokens.
 *
 * Contract (src/engine/contract.ts, fused with onDeviceLoop): the fused inputs
 * plus max_new_tokens int64 [1] (Loop iterations; 0 = a plain step) and eos_id
 * int64 [1]; the fused outputs (next_ids and last_hidden_state of the step's
 * scored rows; present.* = the cache after the loop) plus generated_ids int64
 * [N] and generated_hidden [N,H]: row 0 is the step's last scored row, row j
 * the hidden state that chose generated_ids[j]. An EOS chosen ends the list
 * (it is never fed); N <= max_new_tokens + 1.
 *
 * Weights exist once: the body's stack shares the main graph's memo, so its
 * MatMuls, norms and rotary caches read the main graph's initializers as
 * outer-scope values; the embedding table is one more main-graph initializer.
 */
import type { WeightSource } from '../weights.js';
import type { BuildContext } from './context.js';
import { GraphOps } from './layers.js';
import { EMBED_TOKENS } from './llama.js';
import { type FusedSpec, type FusedStackOutputs, fusedDecoderInputs, fusedDecoderOutputs, fusedDecoderStack } from './llama-fused.js';
import { checkLlamaSpec } from './llama-spec.js';

/** The checkpoint tensors the loop adds to the fused decoder's. */
export const LOOP_DECODER_EXTRA_TENSORS = [EMBED_TOKENS];

export async function buildLoopDecoderGraph(ctx: BuildContext, spec: FusedSpec): Promise<void> {
  checkLlamaSpec(spec);
  const ops = new GraphOps(ctx);
  const { g, dt } = ops;
  const inputs = fusedDecoderInputs(ops, spec);
  const maxNewTokens = g.input('max_new_tokens', 'int64', [1]);
  const eosId = g.input('eos_id', 'int64', [1]);
  const step = await fusedDecoderStack(ops, ctx.source, spec, inputs);
  const loop = await greedyLoop(ops, ctx.source, spec, step, maxNewTokens, eosId);
  fusedDecoderOutputs(ops, spec, { ...step, presents: loop.presents }, 'present_sequence');
  g.output('generated_ids', loop.ids, 'int64', ['generated']);
  g.output('generated_hidden', loop.hidden, dt, ['generated', spec.hidden]);
}

interface LoopOutputs {
  ids: string;
  hidden: string;
  presents: { key: string; value: string }[];
}

/** The Loop after `step`, and its results joined to the step's last choice. */
async function greedyLoop(ops: GraphOps, source: WeightSource, spec: FusedSpec, step: FusedStackOutputs, maxNewTokens: string, eosId: string): Promise<LoopOutputs> {
  const g = ops.g;
  const { hidden: H, layers: L } = spec;
  // The step's last scored row chose the first id: int64 [1], and its hidden state [1, H].
  const firstId = g.op('Gather', [step.nextIds, g.int64([-1], [])], { axis: 1 });
  const firstHidden = g.op('Gather', [step.hidden, g.int64([-1], [])], { axis: 1 });
  const notEos = (gg: typeof g, id: string) => gg.reshape(gg.op('Not', [gg.op('Equal', [id, eosId])]), []);

  const body = g.subgraph('greedy_step');
  const bodyOps = ops.inGraph(body);
  body.input('greedy_step/iteration', 'int64', []);
  body.input('greedy_step/cond', 'bool', []);
  const lastId = body.input('greedy_step/last_id', 'int64', [1]);
  const past = Array.from({ length: L }, (_, i) => ({
    key: body.input(`greedy_step/past.${i}.key`, ops.dt, [1, spec.kvHeads, 'past', spec.headDim]),
    value: body.input(`greedy_step/past.${i}.value`, ops.dt, [1, spec.kvHeads, 'past', spec.headDim]),
  }));
  const table = await bodyOps.tensor(source, EMBED_TOKENS, [spec.vocab, H]);
  const embeds = body.op('Gather', [table, body.reshape(lastId, [1, 1])], { axis: 0 });
  // One new row after `past` positions: seqlens_k = past, total_sequence_length = past + 1.
  const pastLength = body.op('Shape', [past[0]!.key], { start: 2, end: 3 });
  const seqlensK = body.cast(pastLength, 'int64', 'int32');
  const totalSequenceLength = body.cast(body.squeeze(body.op('Add', [pastLength, body.int64([1])]), [0]), 'int64', 'int32');
  const out = await fusedDecoderStack(bodyOps, source, spec, { embeds, past, seqlensK, totalSequenceLength, scoredRows: body.int64([1]) });
  const id = body.reshape(out.nextIds, [1]);
  body.output('greedy_step/cond_out', notEos(body, id), 'bool', []);
  body.output('greedy_step/id_out', id, 'int64', [1]);
  out.presents.forEach((present, i) => {
    body.output(`greedy_step/present.${i}.key`, present.key, ops.dt, [1, spec.kvHeads, 'present', spec.headDim]);
    body.output(`greedy_step/present.${i}.value`, present.value, ops.dt, [1, spec.kvHeads, 'present', spec.headDim]);
  });
  // Scan outputs: stacked along a new first axis, one row per iteration.
  body.output('greedy_step/scan_id', body.reshape(id, []), 'int64', []);
  body.output('greedy_step/scan_hidden', body.reshape(out.hidden, [H]), ops.dt, [H]);

  const carried = step.presents.flatMap((p) => [p.key, p.value]);
  const results = g.node('Loop', [g.reshape(maxNewTokens, []), notEos(g, firstId), firstId, ...carried], { body: { graph: body } }, 3 + 2 * L);
  const presents = Array.from({ length: L }, (_, i) => ({ key: results[1 + 2 * i]!, value: results[2 + 2 * i]! }));
  const scanIds = results[1 + 2 * L]!;
  const scanHidden = results[2 + 2 * L]!;
  return {
    ids: g.op('Concat', [firstId, scanIds], { axis: 0 }),
    hidden: g.op('Concat', [g.reshape(firstHidden, [1, H]), scanHidden], { axis: 0 }),
    presents,
  };
}
