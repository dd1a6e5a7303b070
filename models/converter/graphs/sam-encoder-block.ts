/**
 * One block of SAM's ViT: pre-norm attention with decomposed relative
 * positions (in 14x14 windows, or over the whole 64x64 grid in the global
 * blocks), then a GELU MLP, each with its residual.
 */
import type { SamLayers } from './sam-layers.js';
import type { SamImageEncoderSpec } from './sam-spec.js';

const LN_EPS = 1e-6;

/** x: [1, G, G, C] tokens, channels last. */
export async function encoderBlock(layers: SamLayers, x: string, spec: SamImageEncoderSpec, index: number): Promise<string> {
  const L = layers.with(`${layers.prefix}blocks.${index}.`);
  const g = L.g;
  const { grid, width: C } = spec;
  const window = spec.windows[index]!;
  let h = await L.layerNorm(x, 'norm1', C, LN_EPS);
  if (window > 0) {
    const per = Math.ceil(grid / window);
    const padded = per * window;
    // Zero tokens pad the grid to whole windows; they are attended to, as in SAM.
    if (padded > grid) {
      const zeros = (dims: number[]) => g.op('Expand', [L.scalar(0), g.int64(dims)]);
      h = g.op('Concat', [h, zeros([1, padded - grid, grid, C])], { axis: 1 });
      h = g.op('Concat', [h, zeros([1, padded, padded - grid, C])], { axis: 2 });
    }
    const windows = g.reshape(g.op('Transpose', [g.reshape(h, [1, per, window, per, window, C])], { perm: [0, 1, 3, 2, 4, 5] }), [
      per * per,
      window,
      window,
      C,
    ]);
    const attended = await relPosAttention(L, windows, per * per, window, spec);
    h = g.reshape(g.op('Transpose', [g.reshape(attended, [1, per, per, window, window, C])], { perm: [0, 1, 3, 2, 4, 5] }), [1, padded, padded, C]);
    if (padded > grid) h = g.slice(g.slice(h, 1, 0, grid), 2, 0, grid);
  } else {
    h = await relPosAttention(L, h, 1, grid, spec);
  }
  x = g.op('Add', [x, h]);
  const m = L.gelu(await L.linear(await L.layerNorm(x, 'norm2', C, LN_EPS), 'mlp.lin1', C, spec.mlp));
  return g.op('Add', [x, await L.linear(m, 'mlp.lin2', spec.mlp, C)]);
}

/**
 * Attention over [B, S, S, C] (B windows of S x S tokens) with SAM's
 * decomposed relative positions: logits[q, k] += q . Rh[qy - ky] + q . Rw[qx - kx],
 * with q unscaled, tables gathered from rel_pos_h / rel_pos_w ([2S-1, D]).
 */
async function relPosAttention(L: SamLayers, x: string, batch: number, side: number, spec: SamImageEncoderSpec): Promise<string> {
  const g = L.g;
  const { width: C, heads, headDim: D } = spec;
  const T = side * side;
  const BH = batch * heads;
  const qkv = g.op('Transpose', [g.reshape(await L.linear(x, 'attn.qkv', C, 3 * C), [batch, T, 3, heads, D])], { perm: [2, 0, 3, 1, 4] });
  const [q, k, v] = g.node('Split', [g.reshape(qkv, [3, BH, T, D])], { axis: 0 }, 3).map((t) => g.squeeze(t, [0])) as [string, string, string];
  let logits = g.op('MatMul', [g.op('Mul', [q, L.scalar(1 / Math.sqrt(D))]), g.op('Transpose', [k], { perm: [0, 2, 1] })]);

  // Relative offsets (qi - ki) + (S - 1) index the [2S-1, D] tables: [S, S, D], then [S, D, S] for MatMul.
  const offsets: number[] = [];
  for (let i = 0; i < side; i++) for (let j = 0; j < side; j++) offsets.push(i - j + side - 1);
  const index = g.initializer('rel_index', 'int64', [side, side], offsets);
  const table = async (name: string) =>
    g.op('Transpose', [g.op('Gather', [await L.param(name, [2 * side - 1, D]), index], { axis: 0 })], { perm: [0, 2, 1] });
  const rq = g.reshape(q, [BH, side, side, D]);
  // [BH, qy, qx, D] @ [qy, D, ky] -> [BH, qy, qx, ky]
  const relH = g.op('MatMul', [rq, await table('attn.rel_pos_h')]);
  // [BH, qx, qy, D] @ [qx, D, kx] -> [BH, qx, qy, kx] -> [BH, qy, qx, kx]
  const relW = g.op('Transpose', [g.op('MatMul', [g.op('Transpose', [rq], { perm: [0, 2, 1, 3] }), await table('attn.rel_pos_w')])], {
    perm: [0, 2, 1, 3],
  });
  logits = g.reshape(logits, [BH, side, side, side, side]);
  logits = g.op('Add', [g.op('Add', [logits, g.unsqueeze(relH, [4])]), g.unsqueeze(relW, [3])]);
  const attn = L.softmax(g.reshape(logits, [BH, T, T]));
  const out = g.op('MatMul', [attn, v]); // [BH, T, D]
  const merged = g.reshape(g.op('Transpose', [g.reshape(out, [batch, heads, side, side, D])], { perm: [0, 2, 3, 1, 4] }), [batch, side, side, C]);
  return L.linear(merged, 'attn.proj', C, C);
}
