/**
 * The two passes of Pillow's 8-bit resampling (see ../resample.ts) as
 * WebAssembly SIMD kernels. The arithmetic is Pillow's own: 32-bit integer
 * sums of 8-bit pixels times 22-bit fixed-point coefficients, rounded by
 * adding half and shifting, clamped to 0..255. Integer sums are exact in any
 * order, so the result is the same bit for bit as the JavaScript passes; the
 * tests hold both to that.
 *
 * Horizontal: one output pixel at a time, its R, G, B in three lanes of an
 * i32x4 (the fourth lane carries the next pixel's red and is never stored).
 * Vertical: sixteen output bytes at a time, in four i32x4 accumulators.
 */
import { type Code, op, writeModule } from './wasm-module.js';

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

const seq = (...parts: Code[]): Code => parts.flat();

/** for (counter = 0; counter < limit (a local); counter += step) body */
function forLoop(counter: number, limit: number, step: number, body: Code): Code {
  return seq(
    op.i32Const(0),
    op.set(counter),
    op.block(),
    op.loop(),
    op.get(counter),
    op.get(limit),
    op.i32GeU(),
    op.brIf(1),
    body,
    op.get(counter),
    op.i32Const(step),
    op.i32Add(),
    op.set(counter),
    op.br(0),
    op.end(),
    op.end(),
  );
}

/** local += value (i32) */
const addTo = (local: number, value: Code): Code => seq(op.get(local), value, op.i32Add(), op.set(local));

/** Pillow's clip8 on each lane of the v128 on the stack: (s >> 22), saturated to 0..255 by the two narrowings. */
const shiftDown = (): Code => seq(op.i32Const(PRECISION_BITS), op.i32x4ShrS());

/**
 * hpass(src, srcStride, rows, dst, dstStride, width, first, coef, taps):
 * for each of `rows` rows and each output x < width, the RGB of
 * sum_j src[row][first[x] + 3j] * coef[x * taps + j]. `first` holds byte
 * offsets into the row (i32 each), `coef` i32 coefficients. Reads up to 5
 * bytes past the last pixel it uses and writes 1 byte past the last output.
 */
function horizontalPass(): Code {
  const [src, srcStride, rows, dst, dstStride, width, first, coef, taps] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [r, x, j, p, k, srcRow, dstRow] = [9, 10, 11, 12, 13, 14, 15];
  const acc = 16;
  const tap = seq(
    op.get(acc),
    op.get(p),
    op.v128Load8x8U(),
    op.i32x4ExtendLowI16x8U(),
    op.get(k),
    op.i32Load(),
    op.i32x4Splat(),
    op.i32x4Mul(),
    op.i32x4Add(),
    op.set(acc),
    addTo(p, op.i32Const(3)),
    addTo(k, op.i32Const(4)),
  );
  const pixel = seq(
    seq(op.get(srcRow), op.get(first), op.get(x), op.i32Const(4), op.i32Mul(), op.i32Add(), op.i32Load(), op.i32Add(), op.set(p)),
    seq(op.get(coef), op.get(x), op.get(taps), op.i32Mul(), op.i32Const(4), op.i32Mul(), op.i32Add(), op.set(k)),
    seq(op.i32Const(HALF), op.i32x4Splat(), op.set(acc)),
    forLoop(j, taps, 1, tap),
    // Address, then the value: R, G, B (and a byte the next pixel overwrites).
    seq(op.get(dstRow), op.get(x), op.i32Const(3), op.i32Mul(), op.i32Add()),
    seq(op.get(acc), shiftDown(), op.tee(acc), op.get(acc), op.i16x8NarrowI32x4U(), op.tee(acc), op.get(acc), op.i8x16NarrowI16x8U()),
    op.v128Store32Lane(0),
  );
  return forLoop(
    r,
    rows,
    1,
    seq(
      seq(op.get(src), op.get(r), op.get(srcStride), op.i32Mul(), op.i32Add(), op.set(srcRow)),
      seq(op.get(dst), op.get(r), op.get(dstStride), op.i32Mul(), op.i32Add(), op.set(dstRow)),
      forLoop(x, width, 1, pixel),
    ),
  );
}

/**
 * vpass(mid, rowLen, dst, rows, first, coef, taps): output row y is
 * sum_j mid[first[y] + j * rowLen + i] * coef[y * taps + j] for each byte i of
 * the row. `first` holds byte offsets into `mid`. Reads and writes up to 15
 * bytes past the end of a row (the next row's, rewritten later, or padding).
 */
function verticalPass(): Code {
  const [mid, rowLen, dst, rows, first, coef, taps] = [0, 1, 2, 3, 4, 5, 6];
  const [y, i, j, p, k, rowBase, out, coefBase] = [7, 8, 9, 10, 11, 12, 13, 14];
  const [a0, a1, a2, a3, c, v] = [15, 16, 17, 18, 19, 20];
  const accumulate = (into: number, widen: Code): Code =>
    seq(op.get(into), op.get(v), widen, op.get(c), op.i32x4Mul(), op.i32x4Add(), op.set(into));
  const tap = seq(
    seq(op.get(k), op.i32Load(), op.i32x4Splat(), op.set(c)),
    seq(op.get(p), op.v128Load(), op.set(v)),
    accumulate(a0, seq(op.i16x8ExtendLowI8x16U(), op.i32x4ExtendLowI16x8U())),
    accumulate(a1, seq(op.i16x8ExtendLowI8x16U(), op.i32x4ExtendHighI16x8U())),
    accumulate(a2, seq(op.i16x8ExtendHighI8x16U(), op.i32x4ExtendLowI16x8U())),
    accumulate(a3, seq(op.i16x8ExtendHighI8x16U(), op.i32x4ExtendHighI16x8U())),
    addTo(p, op.get(rowLen)),
    addTo(k, op.i32Const(4)),
  );
  const chunk = seq(
    seq(op.i32Const(HALF), op.i32x4Splat(), op.tee(a0), op.tee(a1), op.tee(a2), op.set(a3)),
    seq(op.get(rowBase), op.get(i), op.i32Add(), op.set(p)),
    seq(op.get(coefBase), op.set(k)),
    forLoop(j, taps, 1, tap),
    seq(op.get(out), op.get(i), op.i32Add()),
    seq(op.get(a0), shiftDown(), op.get(a1), shiftDown(), op.i16x8NarrowI32x4U()),
    seq(op.get(a2), shiftDown(), op.get(a3), shiftDown(), op.i16x8NarrowI32x4U()),
    op.i8x16NarrowI16x8U(),
    op.v128Store(),
  );
  return forLoop(
    y,
    rows,
    1,
    seq(
      seq(op.get(mid), op.get(first), op.get(y), op.i32Const(4), op.i32Mul(), op.i32Add(), op.i32Load(), op.i32Add(), op.set(rowBase)),
      seq(op.get(dst), op.get(y), op.get(rowLen), op.i32Mul(), op.i32Add(), op.set(out)),
      seq(op.get(coef), op.get(y), op.get(taps), op.i32Mul(), op.i32Const(4), op.i32Mul(), op.i32Add(), op.set(coefBase)),
      forLoop(i, rowLen, 16, chunk),
    ),
  );
}

/** The few members of the WebAssembly JS API used here (the DOM lib that types them is not in this project). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule) => { exports: unknown };
}
type WasmModule = { readonly kind: 'module' };
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface ResampleKernels {
  memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
  hpass(src: number, srcStride: number, rows: number, dst: number, dstStride: number, width: number, first: number, coef: number, taps: number): void;
  vpass(mid: number, rowLen: number, dst: number, rows: number, first: number, coef: number, taps: number): void;
}

/** 4 GiB: wasm32's whole address space; memory grows as images need it. */
const MAX_PAGES = 65536;

let compiled: WasmModule | null | undefined;

/** The compiled module, or null where this runtime has no WebAssembly SIMD. */
function resampleModule(): WasmModule | null {
  if (compiled !== undefined) return compiled;
  const bytes = writeModule(
    [
      { exportName: 'hpass', params: 9, i32Locals: 7, v128Locals: 1, body: horizontalPass() },
      { exportName: 'vpass', params: 7, i32Locals: 8, v128Locals: 6, body: verticalPass() },
    ],
    MAX_PAGES,
  );
  const module = wasm.validate(bytes) ? new wasm.Module(bytes) : null;
  compiled = module;
  return module;
}

/** A fresh instance (its own memory), or null without WebAssembly SIMD. */
export function instantiateResampleKernels(): ResampleKernels | null {
  const module = resampleModule();
  if (!module) return null;
  return new wasm.Instance(module).exports as ResampleKernels;
}
