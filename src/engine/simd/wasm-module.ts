/**
 * Just enough of the WebAssembly binary format to write a module of i32-only
 * functions with SIMD bodies, in code: no toolchain, no build step, nothing
 * to compile at run time beyond WebAssembly.Module itself. Each instruction
 * helper returns its bytes; a body is the concatenation of those.
 */

export type Code = number[];

function uleb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value >>>= 7;
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

function sleb(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const name = (text: string): number[] => vec([...Buffer.from(text, 'utf8')].map((b) => [b]));

const I32 = 0x7f;
const V128 = 0x7b;

/** Instructions, by their text-format names. `align` is log2 of the alignment hint. */
export const op = {
  block: (): Code => [0x02, 0x40],
  loop: (): Code => [0x03, 0x40],
  end: (): Code => [0x0b],
  br: (depth: number): Code => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Code => [0x0d, ...uleb(depth)],
  get: (local: number): Code => [0x20, ...uleb(local)],
  set: (local: number): Code => [0x21, ...uleb(local)],
  tee: (local: number): Code => [0x22, ...uleb(local)],
  i32Load: (offset = 0): Code => [0x28, 2, ...uleb(offset)],
  i32Const: (value: number): Code => [0x41, ...sleb(value)],
  i32GeU: (): Code => [0x4f],
  i32Add: (): Code => [0x6a],
  i32Mul: (): Code => [0x6c],
  v128Load: (offset = 0): Code => [0xfd, ...uleb(0x00), 0, ...uleb(offset)],
  /** Eight bytes, each zero-extended to an i16 lane. */
  v128Load8x8U: (offset = 0): Code => [0xfd, ...uleb(0x02), 0, ...uleb(offset)],
  v128Store: (offset = 0): Code => [0xfd, ...uleb(0x0b), 0, ...uleb(offset)],
  v128Store32Lane: (lane: number, offset = 0): Code => [0xfd, ...uleb(0x5a), 0, ...uleb(offset), lane],
  i32x4Splat: (): Code => [0xfd, ...uleb(0x11)],
  i8x16NarrowI16x8U: (): Code => [0xfd, ...uleb(0x66)],
  i16x8NarrowI32x4U: (): Code => [0xfd, ...uleb(0x86)],
  i16x8ExtendLowI8x16U: (): Code => [0xfd, ...uleb(0x89)],
  i16x8ExtendHighI8x16U: (): Code => [0xfd, ...uleb(0x8a)],
  i32x4ExtendLowI16x8U: (): Code => [0xfd, ...uleb(0xa9)],
  i32x4ExtendHighI16x8U: (): Code => [0xfd, ...uleb(0xaa)],
  i32x4ShrS: (): Code => [0xfd, ...uleb(0xac)],
  i32x4Add: (): Code => [0xfd, ...uleb(0xae)],
  i32x4Mul: (): Code => [0xfd, ...uleb(0xb5)],
};

export interface FunctionSpec {
  exportName: string;
  params: number;
  /** Extra locals after the params: this many i32, then this many v128. */
  i32Locals: number;
  v128Locals: number;
  body: Code;
}

/** A module exporting `memory` (growable up to `maxPages` of 64 KiB) and the functions, each (i32 x params) -> (). */
export function writeModule(functions: readonly FunctionSpec[], maxPages: number): Uint8Array {
  const types = functions.map((f) => [0x60, ...vec(Array.from({ length: f.params }, () => [I32])), ...vec([])]);
  const bodies = functions.map((f) => {
    const locals = vec([
      [...uleb(f.i32Locals), I32],
      [...uleb(f.v128Locals), V128],
    ]);
    const code = [...locals, ...f.body, ...op.end()];
    return [...uleb(code.length), ...code];
  });
  return Uint8Array.from([
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(types)),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    // One memory: min 1 page, with a maximum so it can grow in place.
    ...section(5, vec([[0x01, ...uleb(1), ...uleb(maxPages)]])),
    ...section(7, vec([[...name('memory'), 0x02, 0], ...functions.map((f, i) => [...name(f.exportName), 0x00, ...uleb(i)])])),
    ...section(10, vec(bodies)),
  ]);
}
