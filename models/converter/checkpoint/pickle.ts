/**
 * A pickle reader that only describes tensors and never runs code. A pickle is
 * a program: GLOBAL names any Python callable and REDUCE calls it, which is how
 * a malicious checkpoint runs os.system. Here the only names a pickle may
 * mention are the few torch.save uses for a state dict; they are interpreted
 * by this file (a storage is a reference to bytes elsewhere in the archive,
 * a tensor a view on it), and any other name stops the read before anything
 * further happens. Only the opcodes torch.save (protocol 2) writes are read.
 */
import { UserInputError } from '../../../src/errors.js';
import type { SourceDtype } from '../weights.js';

export interface StorageRef {
  key: string;
  dtype: SourceDtype;
  numel: number;
}

export interface TensorRef {
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

const STORAGES: Record<string, SourceDtype> = {
  'torch.FloatStorage': 'float32',
  'torch.HalfStorage': 'float16',
  'torch.BFloat16Storage': 'bfloat16',
  'torch.DoubleStorage': 'float64',
  'torch.LongStorage': 'int64',
  'torch.IntStorage': 'int32',
  'torch.ShortStorage': 'int16',
  'torch.CharStorage': 'int8',
  'torch.ByteStorage': 'uint8',
  'torch.BoolStorage': 'bool',
};
const CALLABLES = new Set(['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter']);

/** An allowed Python name; it has no behaviour of its own, REDUCE below gives it one. */
class Global {
  constructor(readonly name: string) {}
}
class Storage {
  constructor(readonly ref: StorageRef) {}
}
class Tensor {
  constructor(readonly ref: TensorRef) {}
}

type Value = null | boolean | number | string | Uint8Array | Value[] | Map<Value, Value> | Global | Storage | Tensor;

/**
 * The tensors of a torch.save'd state dict (a dict or OrderedDict of tensors,
 * as `file` calls it in messages), in pickle order. Non-tensor values are skipped.
 */
export function readStateDict(data: Uint8Array, file: string): Map<string, TensorRef> {
  const invalid = (why: string) => new UserInputError(`${file}: the checkpoint's pickle is not a torch state dict (${why}).`, 'checkpoint_invalid');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  const stack: Value[] = [];
  const marks: number[] = [];
  const memo = new Map<number, Value>();

  const need = (n: number) => {
    if (pos + n > data.length) throw invalid('it ends early');
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = () => data[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const bytes = (n: number) => data.subarray(need(n), pos);
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw invalid('it ends early');
    const text = new TextDecoder('latin1').decode(data.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const pop = (): Value => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) throw invalid('its stack underflows');
    return stack.pop()!;
  };
  const top = (): Value => {
    if (stack.length === 0) throw invalid('its stack underflows');
    return stack[stack.length - 1];
  };
  const popMark = (): Value[] => {
    const at = marks.pop();
    if (at === undefined) throw invalid('a MARK is missing');
    return stack.splice(at);
  };
  const asInt = (v: Value, what: string): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what} is not a non-negative integer`);
    return v;
  };
  const asInts = (v: Value, what: string): number[] => {
    if (!Array.isArray(v)) throw invalid(`${what} is not a tuple`);
    return v.map((x) => asInt(x, what));
  };
  const asMap = (v: Value, what: string): Map<Value, Value> => {
    if (!(v instanceof Map)) throw invalid(`${what} is not a dict`);
    return v;
  };

  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (!CALLABLES.has(full) && !(full in STORAGES)) {
      throw new UserInputError(
        `${file}: refusing to load: the pickle calls ${full}, which is not a tensor (only tensors are read, never code).`,
        'checkpoint_unsafe',
      );
    }
    return new Global(full);
  };

  const persistentLoad = (pid: Value): Storage => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage' || !(pid[1] instanceof Global) || typeof pid[2] !== 'string') {
      throw invalid('a persistent id is not a storage');
    }
    const dtype = STORAGES[pid[1].name];
    if (!dtype) throw invalid(`a storage has type ${pid[1].name}`);
    return new Storage({ key: pid[2], dtype, numel: asInt(pid[4], 'a storage size') });
  };

  const reduce = (callable: Value, args: Value): Value => {
    if (!(callable instanceof Global) || !Array.isArray(args)) throw invalid('it calls something that is not an allowed name');
    switch (callable.name) {
      case 'collections.OrderedDict':
        if (args.length !== 0) throw invalid('an OrderedDict is built from arguments');
        return new Map();
      case 'torch._utils._rebuild_tensor_v2': {
        const [storage, offset, shape, stride] = args;
        if (args.length < 6 || !(storage instanceof Storage)) throw invalid('a tensor has no storage');
        const ref: TensorRef = { storage: storage.ref, offset: asInt(offset, 'a storage offset'), shape: asInts(shape, 'a size'), stride: asInts(stride, 'a stride') };
        if (ref.shape.length !== ref.stride.length) throw invalid('a tensor has as many strides as dimensions');
        return new Tensor(ref);
      }
      case 'torch._utils._rebuild_parameter':
        if (!(args[0] instanceof Tensor)) throw invalid('a parameter holds no tensor');
        return args[0];
      default:
        throw invalid(`it calls ${callable.name}`);
    }
  };

  if (u8() !== 0x80 || u8() > 5) throw invalid('it does not start with a pickle protocol header');
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x2e: { // STOP
        const root = pop();
        if (!(root instanceof Map)) throw invalid('the top level is not a dict');
        const tensors = new Map<string, TensorRef>();
        for (const [key, value] of root) if (typeof key === 'string' && value instanceof Tensor) tensors.set(key, value.ref);
        return tensors;
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x8a: { // LONG1: little-endian two's complement
        const raw = bytes(u8());
        let n = 0n;
        for (let i = raw.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(raw[i]);
        if (raw.length > 0 && raw[raw.length - 1] & 0x80) n -= 1n << BigInt(8 * raw.length);
        if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < -BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('an integer is too large');
        stack.push(Number(n));
        break;
      }
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(text(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(text(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; } // TUPLE3
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); listAt(top()).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); listAt(top()).push(...items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); asMap(top(), 'a SETITEM target').set(k, v); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        const dict = asMap(top(), 'a SETITEMS target');
        if (items.length % 2) throw invalid('SETITEMS has an odd number of items');
        for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(recall(u8())); break; // BINGET
      case 0x6a: stack.push(recall(u32())); break; // LONG_BINGET
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw invalid('STACK_GLOBAL names are not strings');
        stack.push(global(module, name));
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      case 0x52: { const args = pop(); stack.push(reduce(pop(), args)); break; } // REDUCE
      case 0x62: { // BUILD: attributes (a state dict's _metadata) carry nothing a tensor needs
        pop();
        const target = top();
        if (!(target instanceof Map) && !(target instanceof Tensor)) throw invalid('BUILD targets an object');
        break;
      }
      case 0x95: need(8); break; // FRAME
      default:
        throw invalid(`pickle opcode 0x${op.toString(16)} at byte ${pos - 1}, which torch.save does not write`);
    }
  }

  function text(raw: Uint8Array): string {
    try {
      return utf8.decode(raw);
    } catch {
      throw invalid('a string is not UTF-8');
    }
  }
  function recall(index: number): Value {
    if (!memo.has(index)) throw invalid(`memo ${index} is read before it is written`);
    return memo.get(index)!;
  }
  function listAt(v: Value): Value[] {
    if (!Array.isArray(v)) throw invalid('APPEND targets something that is not a list');
    return v;
  }
}
