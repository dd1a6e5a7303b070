"""Writing state dicts the way the published checkpoints were written.

- LISA-7B-v1: transformers 4.31 save_pretrained sharding -> `pytorch_model-0000i-of-0000n.bin`
  (torch.save of plain dicts; torch names the zip prefix after the file) + an index json;
- LISA-13B-llama2-v1 as safetensors shards + `model.safetensors.index.json`;
- CLIP: one `pytorch_model.bin` holding model.state_dict() itself (an OrderedDict with the
  `_metadata` attribute, pickled with BUILD), or one `model.safetensors`.
"""
import collections
import os

import torch

from checkpoint_io import write_safetensors
from fixture_files import write_json


def nbytes(t):
    return t.numel() * t.element_size()


def shard(sd, count):
    """Key order kept, cut into `count` runs of about equal bytes (what max_shard_size does)."""
    total = sum(nbytes(t) for t in sd.values())
    shards, current, size = [], collections.OrderedDict(), 0
    for name, t in sd.items():
        if current and size + nbytes(t) > total / count * (len(shards) + 1) and len(shards) < count - 1:
            shards.append(current)
            current = collections.OrderedDict()
        current[name] = t
        size += nbytes(t)
    shards.append(current)
    return shards, total


def with_layout_quirks(sd, hidden):
    """Tensors whose storage is not their own: q/k/v of layer 0 slices of one storage (offsets),
    mlp.up_proj of layer 1 a transposed view (strides). Values unchanged; torch.save keeps views."""
    sd = collections.OrderedDict(sd)
    p = 'model.layers.0.self_attn.'
    fused = torch.cat([sd[p + 'q_proj.weight'], sd[p + 'k_proj.weight'], sd[p + 'v_proj.weight']], dim=0)
    sd[p + 'q_proj.weight'] = fused[0:hidden]
    sd[p + 'k_proj.weight'] = fused[hidden:2 * hidden]
    sd[p + 'v_proj.weight'] = fused[2 * hidden:3 * hidden]
    up = 'model.layers.1.mlp.up_proj.weight'
    sd[up] = sd[up].T.contiguous().T
    return sd


def save_torch_shards(directory, sd, count):
    shards, total = shard(sd, count)
    weight_map = {}
    for i, part in enumerate(shards, start=1):
        name = f'pytorch_model-{i:05d}-of-{len(shards):05d}.bin'
        torch.save(dict(part), os.path.join(directory, name))
        weight_map.update({k: name for k in part})
    write_json(os.path.join(directory, 'pytorch_model.bin.index.json'),
               {'metadata': {'total_size': total}, 'weight_map': weight_map})


def save_safetensors_shards(directory, sd, count):
    shards, total = shard(sd, count)
    weight_map = {}
    for i, part in enumerate(shards, start=1):
        name = f'model-{i:05d}-of-{len(shards):05d}.safetensors'
        write_safetensors(os.path.join(directory, name), part)
        weight_map.update({k: name for k in part})
    write_json(os.path.join(directory, 'model.safetensors.index.json'),
               {'metadata': {'total_size': total}, 'weight_map': weight_map})


def save_state_dict_bin(path, sd):
    state = collections.OrderedDict(sd)
    modules = [''] + sorted({k.rsplit('.', 1)[0] for k in sd if '.' in k})
    state._metadata = collections.OrderedDict((m, {'version': 1}) for m in modules)
    torch.save(state, path)
