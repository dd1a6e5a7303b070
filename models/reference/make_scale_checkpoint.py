#!/usr/bin/env python3
"""Makes a larger LISA-layout checkpoint for measuring the converter's memory and time: the
tiny fixture's SAM, CLIP link and tokenizer, with a LLaMA of real proportions (default hidden
2048, intermediate 5504, 6 layers, vocab 32004: about 0.9 GB of bfloat16 in 3 .bin shards).

  /usr/bin/python3 models/reference/make_scale_checkpoint.py --fixtures DIR --out DIR2 [--hidden 2048 --layers 6]
"""
import argparse
import json
import os
import shutil

import torch


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--fixtures', required=True, help='output folder of make_fixtures.py')
    p.add_argument('--out', required=True)
    p.add_argument('--hidden', type=int, default=2048)
    p.add_argument('--intermediate', type=int, default=5504)
    p.add_argument('--layers', type=int, default=6)
    p.add_argument('--heads', type=int, default=16)
    p.add_argument('--vocab', type=int, default=32004)
    p.add_argument('--shards', type=int, default=3)
    a = p.parse_args()
    src = os.path.join(a.fixtures, 'lisa-7b')
    index = json.load(open(os.path.join(src, 'pytorch_model.bin.index.json')))
    tiny = {}
    for shard in sorted(set(index['weight_map'].values())):
        tiny.update(torch.load(os.path.join(src, shard), map_location='cpu'))
    config = json.load(open(os.path.join(src, 'config.json')))
    H, I = a.hidden, a.intermediate
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return (torch.randn(*shape, generator=g) * 0.02).to(torch.bfloat16)

    weights = {'model.embed_tokens.weight': rand(a.vocab, H)}
    for i in range(a.layers):
        pre = f'model.layers.{i}.'
        for name in ('q', 'k', 'v', 'o'):
            weights[f'{pre}self_attn.{name}_proj.weight'] = rand(H, H)
        weights[f'{pre}mlp.gate_proj.weight'] = rand(I, H)
        weights[f'{pre}mlp.up_proj.weight'] = rand(I, H)
        weights[f'{pre}mlp.down_proj.weight'] = rand(H, I)
        weights[f'{pre}input_layernorm.weight'] = torch.ones(H, dtype=torch.bfloat16)
        weights[f'{pre}post_attention_layernorm.weight'] = torch.ones(H, dtype=torch.bfloat16)
    weights['model.norm.weight'] = torch.ones(H, dtype=torch.bfloat16)
    weights['model.mm_projector.weight'] = rand(H, config['mm_hidden_size'])
    weights['model.mm_projector.bias'] = rand(H)
    weights['model.text_hidden_fcs.0.0.weight'] = rand(H, H).float()
    weights['model.text_hidden_fcs.0.0.bias'] = rand(H).float()
    weights['model.text_hidden_fcs.0.2.weight'] = rand(config['out_dim'], H).float()
    weights['model.text_hidden_fcs.0.2.bias'] = rand(config['out_dim']).float()
    weights.update({k: v for k, v in tiny.items() if k.startswith('model.visual_model.')})
    weights['lm_head.weight'] = rand(a.vocab, H)

    os.makedirs(a.out, exist_ok=True)
    for name in os.listdir(src):
        if not name.startswith('pytorch_model'):
            shutil.copyfile(os.path.join(src, name), os.path.join(a.out, name))
    config.update(hidden_size=H, intermediate_size=I, num_hidden_layers=a.layers, num_attention_heads=a.heads,
                  num_key_value_heads=a.heads, vocab_size=a.vocab)
    json.dump(config, open(os.path.join(a.out, 'config.json'), 'w'), indent=2)
    names = list(weights)
    per = -(-len(names) // a.shards)
    weight_map, total = {}, 0
    for s in range(a.shards):
        file = f'pytorch_model-{s + 1:05d}-of-{a.shards:05d}.bin'
        part = {n: weights[n] for n in names[s * per:(s + 1) * per]}
        torch.save(part, os.path.join(a.out, file))
        weight_map.update({n: file for n in part})
        total += sum(t.numel() * t.element_size() for t in part.values())
    json.dump({'metadata': {'total_size': total}, 'weight_map': weight_map},
              open(os.path.join(a.out, 'pytorch_model.bin.index.json'), 'w'), indent=2)
    largest = max(weights.values(), key=lambda t: t.numel())
    print(f'{a.out}: {total / 1e9:.2f} GB in {a.shards} shards; largest tensor {list(largest.shape)}')


if __name__ == '__main__':
    main()
