"""Reading and writing checkpoints in the published Hugging Face layouts.

Reading: `pytorch_model.bin` (torch zip, loaded with weights_only so no
pickle code runs), `model.safetensors`, and their sharded forms with an index
json. Safetensors are parsed by hand (no safetensors package on Debian).
Every floating tensor comes back as float32: the reference computes in fp32 on
the values the checkpoint holds (bfloat16 widens exactly).
"""
import json
import os
import struct

import numpy as np
import torch

SAFETENSORS_DTYPES = {
    'F64': np.float64, 'F32': np.float32, 'F16': np.float16, 'BF16': np.uint16,
    'I64': np.int64, 'I32': np.int32, 'I16': np.int16, 'I8': np.int8, 'U8': np.uint8, 'BOOL': np.bool_,
}
TORCH_TO_SAFETENSORS = {
    torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
    torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8', torch.bool: 'BOOL',
}


def _widen(tensor):
    if tensor.is_floating_point():
        return tensor.to(torch.float32)
    return tensor


def read_safetensors(path):
    with open(path, 'rb') as f:
        data = f.read()
    (header_len,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8:8 + header_len].decode('utf-8'))
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        begin, end = info['data_offsets']
        dtype = np.dtype(SAFETENSORS_DTYPES[info['dtype']]).newbyteorder('<')
        count = int(np.prod(info['shape'])) if info['shape'] else 1
        if (end - begin) != count * dtype.itemsize or base + end > len(data):
            raise ValueError(f'{path}: tensor {name} has {end - begin} bytes for shape {info["shape"]}')
        values = np.frombuffer(data, dtype=dtype, count=count, offset=base + begin).reshape(info['shape'])
        if info['dtype'] == 'BF16':
            values = (values.astype(np.uint32) << 16).view(np.float32)
        out[name] = torch.from_numpy(np.array(values))
    return out


def write_safetensors(path, tensors, metadata=None):
    """Writes like the safetensors library: data ordered by dtype size (largest first) then name,
    header padded with spaces to a multiple of 8."""
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header = {'__metadata__': metadata if metadata is not None else {'format': 'pt'}}
    chunks = []
    offset = 0
    for name in order:
        t = tensors[name].contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {'dtype': TORCH_TO_SAFETENSORS[t.dtype], 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)


def read_torch_bin(path):
    state = torch.load(path, map_location='cpu', weights_only=True)
    return {name: _widen(t) for name, t in state.items()}


def _sharded(directory, index_name, reader):
    with open(os.path.join(directory, index_name), encoding='utf-8') as f:
        index = json.load(f)
    out = {}
    for shard in sorted(set(index['weight_map'].values())):
        out.update(reader(os.path.join(directory, shard)))
    missing = [n for n in index['weight_map'] if n not in out]
    if missing:
        raise ValueError(f'{directory}/{index_name} names {missing[0]} but no shard holds it')
    return out


def load_state_dict(directory):
    """All tensors of a checkpoint folder, as Hugging Face would find them (safetensors first)."""
    layouts = [
        ('model.safetensors', read_safetensors),
        ('model.safetensors.index.json', lambda d: _sharded(d, 'model.safetensors.index.json', read_safetensors)),
        ('pytorch_model.bin', read_torch_bin),
        ('pytorch_model.bin.index.json', lambda d: _sharded(d, 'pytorch_model.bin.index.json', read_torch_bin)),
    ]
    for name, reader in layouts:
        path = os.path.join(directory, name)
        if os.path.exists(path):
            if name.endswith('.json'):
                return reader(directory)
            return {k: _widen(v) for k, v in reader(path).items()}
    raise FileNotFoundError(f'{directory} holds no model.safetensors, pytorch_model.bin or shard index')


def load_json(directory, name):
    with open(os.path.join(directory, name), encoding='utf-8') as f:
        return json.load(f)
