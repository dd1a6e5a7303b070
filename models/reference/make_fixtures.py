#!/usr/bin/env python3
"""Writes the converter's test fixtures: tiny LISA and CLIP checkpoints in the published layouts,
test images, checkpoints the converter must refuse, and DIR/fixtures.json describing them.

  python3 models/reference/make_fixtures.py --out DIR

Deterministic (same bytes on every run with the same torch/sentencepiece) and a few seconds.
The answers are engineered (fixture_engineer.py): each case's conversation puts [SEG] at fixed
early steps and ends with </s> after a long answer; the maker asserts that, and that every greedy
step's top-1 logit beats the top-2 by at least MIN_MARGIN so a float16 pack picks the same tokens.
"""
import argparse
import os
import shutil
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checkpoint_io import write_safetensors  # noqa: E402
from clip import ClipVision, ClipVisionConfig  # noqa: E402
from fixture_checkpoints import save_safetensors_shards, save_state_dict_bin, save_torch_shards, with_layout_quirks  # noqa: E402
from fixture_engineer import Conversation, engineer, margins  # noqa: E402
from fixture_files import (clip_configs, generation_config, lisa_config, train_tokenizer, write_evil_pickle,  # noqa: E402
                           write_images, write_json, write_tokenizer_files)
from fixture_weights import BF16, as_float32, clip_state_dict, lisa_state_dict, llama_part, Rand  # noqa: E402
from lisa import Lisa, LlamaTokenizer431  # noqa: E402
from preprocess import read_image  # noqa: E402

MIN_MARGIN = 0.05
# What --search-seeds asks of a new seed: headroom over MIN_MARGIN.
SEARCH_MARGIN = 0.1
CLIP_SEED = 100
CLIP_VISION = dict(hidden_size=32, image_size=224, patch_size=14, num_hidden_layers=3, num_attention_heads=2,
                   intermediate_size=64, projection_dim=16)
CLIP_TEXT = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=64,
                 max_position_embeddings=77, projection_dim=16)
CHECKPOINTS = {
    'lisa-7b': dict(
        seed=18, sam_seed=1006, sp_vocab=900, llama2=False, layout='torch-shards',
        added=['<im_patch>', '<im_start>', '<im_end>', '[SEG]'],
        sizes=dict(hidden_size=64, intermediate_size=172, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=4, rms_norm_eps=1e-6, max_position_embeddings=2048, mm_hidden_size=32),
        image='landscape.png',
        questions=['Can you segment the red circle in this image?', 'Please segment the blue square in this image.'],
        plan=[({3, 20}, 38), ({4}, 37)],
        # Not engineered, only checked: an RGBA image (alpha dropped) whose answer has no [SEG].
        extra=[dict(image='alpha.png', questions=['Can you segment the red circle in this image?'])]),
    'lisa-13b': dict(
        seed=26, sam_seed=2004, sp_vocab=880, llama2=True, layout='safetensors-shards',
        added=['[SEG]', '<im_start>', '<im_end>'],
        sizes=dict(hidden_size=80, intermediate_size=216, num_hidden_layers=3, num_attention_heads=5,
                   num_key_value_heads=5, rms_norm_eps=1e-5, max_position_embeddings=4096, mm_hidden_size=32),
        image='portrait.png',
        questions=['What is the blue square in this image? Please respond with segmentation mask.',
                   'Where is the red circle? Please output segmentation mask.'],
        plan=[({2}, 36), ({3, 15}, 38)],
        extra=[]),
}


def suppress_unlikely_rows(sd, added_ids, keep):
    """<unk>, <s>, byte pieces and the image tokens get small lm_head rows: a real model never
    says them, and raw bytes would make answers that do not survive decode -> encode."""
    lm = sd['lm_head.weight'].to(torch.float32)
    for i in list(range(0, 259)) + added_ids:
        if i not in keep:
            lm[i] *= 0.25
    sd['lm_head.weight'] = lm.to(BF16)


def build_lisa(out, name, spec, seed, clip, preprocessor, directory, min_margin):
    """Random weights for `seed` with engineered [SEG]/</s> rows; raises when the seed is unusable."""
    config = lisa_config(spec['sizes'], spec['sp_vocab'] + len(spec['added']), spec['llama2'])
    added = {token: spec['sp_vocab'] + i for i, token in enumerate(spec['added'])}
    tokenizer = LlamaTokenizer431.from_pretrained(directory)
    sd = lisa_state_dict(seed, config, spec['sam_seed'])
    seg, eos = added['[SEG]'], 2
    suppress_unlikely_rows(sd, [i for t, i in added.items() if t != '[SEG]'], keep={eos, seg})
    weights = as_float32(sd)
    model = Lisa(config, weights, tokenizer, clip, preprocessor)
    _, features = model.image_features(read_image(os.path.join(out, 'images', spec['image'])))
    turns = engineer(model, features, spec['questions'], spec['plan'])
    sd['lm_head.weight'] = weights['lm_head.weight'].to(BF16)
    found = margins(turns)
    if min(found) < min_margin:
        raise AssertionError(f'{name}: a greedy step has top-1/top-2 margin {min(found):.4f} < {min_margin}')
    for turn in turns:
        if len(set(turn['tokens'])) * 2 < len(turn['tokens']):
            raise AssertionError(f'{name}: the answer repeats itself: {turn["tokens"]}')
    return config, added, sd, model, turns, min(found)


def make_lisa(out, name, spec, clip, preprocessor, tokenizer_bytes, search):
    directory = os.path.join(out, name)
    os.makedirs(directory)
    config = lisa_config(spec['sizes'], spec['sp_vocab'] + len(spec['added']), spec['llama2'])
    added = {token: spec['sp_vocab'] + i for i, token in enumerate(spec['added'])}
    write_json(os.path.join(directory, 'config.json'), config)
    write_json(os.path.join(directory, 'generation_config.json'), generation_config())
    write_tokenizer_files(directory, tokenizer_bytes, added, normalized=not spec['llama2'],
                          max_length=spec['sizes']['max_position_embeddings'] if spec['llama2'] else 512)
    seed = spec['seed']
    while True:
        try:
            config, added, sd, model, turns, margin = build_lisa(
                out, name, spec, seed, clip, preprocessor, directory, SEARCH_MARGIN if search else MIN_MARGIN)
            break
        except (AssertionError, RuntimeError) as error:
            if not search or seed >= spec['seed'] + search:
                raise AssertionError(f'{error} (seed {seed}; --search-seeds N looks for another)') from error
            seed += 1
    if search:
        print(f'{name}: seed {seed} (min margin {margin:.4f})', file=sys.stderr)
    if spec['layout'] == 'torch-shards':
        save_torch_shards(directory, with_layout_quirks(sd, config['hidden_size']), 2)
    else:
        save_safetensors_shards(directory, sd, 2)

    seg, eos = added['[SEG]'], 2
    case_turns = []
    for (segs, eos_step), turn in zip(spec['plan'], turns):
        tokens = turn['tokens']
        assert tokens[-1] == eos and len(tokens) == eos_step + 1
        assert [j for j, t in enumerate(tokens) if t == seg] == sorted(segs)
        case_turns.append({'generated_ids': tokens, 'generated_count': len(tokens), 'stopped_by_eos': True,
                           'seg_steps': sorted(segs), 'seg_count': len(segs), 'text': model.answer_text(tokens),
                           'prompt_ids': turn['prompt_ids']})
    info = {'dir': name, 'layout': spec['layout'], 'seed': seed, 'config': config, 'added_tokens': added,
            'tokens': {'seg': seg, 'eos': eos, 'bos': 1, 'unk': 0, 'im_start': added['<im_start>'], 'im_end': added['<im_end>']}}
    case = {'name': f'{name}-{os.path.splitext(spec["image"])[0]}', 'checkpoint': name, 'vision_tower': 'clip',
            'image': f'images/{spec["image"]}', 'questions': spec['questions'], 'template': 'llava_v1',
            'max_new_tokens': 512, 'turns': case_turns, 'min_top2_margin': round(margin, 4)}
    cases = [case]
    for extra in spec['extra']:
        cases.append(checked_case(out, name, model, extra))
    return info, cases


def checked_case(out, name, model, extra, limit=64):
    """A conversation the weights were not engineered for, recorded as it comes out; its margins
    and its ending with </s> are still asserted."""
    image = f'images/{extra["image"]}'
    _, features = model.image_features(read_image(os.path.join(out, image)))
    turns = Conversation(model, features, extra['questions']).run([limit] * len(extra['questions']))
    margin = min(margins(turns))
    if margin < MIN_MARGIN or any(t['tokens'][-1] != model.eos_id for t in turns):
        raise AssertionError(f'{name} on {image}: margin {margin:.4f} or no </s> within {limit} tokens')
    return {'name': f'{name}-{os.path.splitext(extra["image"])[0]}', 'checkpoint': name, 'vision_tower': 'clip',
            'image': image, 'questions': extra['questions'], 'template': 'llava_v1', 'max_new_tokens': 512,
            'turns': [{'generated_ids': t['tokens'], 'generated_count': len(t['tokens']), 'stopped_by_eos': True,
                       'seg_steps': [j for j, x in enumerate(t['tokens']) if x == model.seg_id],
                       'seg_count': t['tokens'].count(model.seg_id), 'text': model.answer_text(t['tokens']),
                       'prompt_ids': t['prompt_ids']} for t in turns],
            'min_top2_margin': round(margin, 4)}


def make_clip(out):
    config, preprocessor = clip_configs(CLIP_VISION, CLIP_TEXT)
    sd = clip_state_dict(CLIP_SEED, CLIP_VISION, CLIP_TEXT)
    for name, writer in (('clip', lambda d: save_state_dict_bin(os.path.join(d, 'pytorch_model.bin'), sd)),
                         ('clip-safetensors', lambda d: write_safetensors(os.path.join(d, 'model.safetensors'), sd))):
        directory = os.path.join(out, name)
        os.makedirs(directory)
        write_json(os.path.join(directory, 'config.json'), config)
        write_json(os.path.join(directory, 'preprocessor_config.json'), preprocessor)
        writer(directory)
    clip = ClipVision(ClipVisionConfig(config), as_float32(sd))
    return clip, preprocessor


def make_bad(out, tokenizer_bytes, lisa7b):
    """Checkpoints the converter must refuse, each with one clear message."""
    evil = os.path.join(out, 'bad', 'evil-pickle')
    os.makedirs(evil)
    for name in ('config.json', 'generation_config.json', 'tokenizer.model', 'added_tokens.json',
                 'special_tokens_map.json', 'tokenizer_config.json'):
        shutil.copyfile(os.path.join(out, 'lisa-7b', name), os.path.join(evil, name))
    write_evil_pickle(os.path.join(evil, 'pytorch_model.bin'))

    # A LLaMA checkpoint as Hugging Face ships one: no mm_*/vision/out_dim keys, no LISA weights.
    plain = os.path.join(out, 'bad', 'plain-llama')
    os.makedirs(plain)
    lisa_only = ('mm_', 'vision_tower', 'out_dim', 'train_', 'tune_', 'freeze_', 'pretrain_mm', 'use_mm', 'image_')
    config = {k: v for k, v in lisa7b['config'].items() if not k.startswith(lisa_only)}
    config.update(architectures=['LlamaForCausalLM'], model_type='llama', _name_or_path='llama-7b',
                  vocab_size=CHECKPOINTS['lisa-7b']['sp_vocab'])
    write_json(os.path.join(plain, 'config.json'), config)
    write_tokenizer_files(plain, tokenizer_bytes, {})
    os.remove(os.path.join(plain, 'added_tokens.json'))
    sd = {}
    r = Rand(5)
    llama_part(r, sd, config)
    sd['lm_head.weight'] = r.n(config['vocab_size'], config['hidden_size']).to(BF16)
    torch.save(sd, os.path.join(plain, 'pytorch_model.bin'))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', required=True)
    parser.add_argument('--search-seeds', type=int, default=0, metavar='N',
                        help='maintainers: when a seed fails (e.g. after a weight or image change), try the next N '
                             'and report the ones to put in CHECKPOINTS')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.time()
    out = args.out
    for sub in ('clip', 'clip-safetensors', 'lisa-7b', 'lisa-13b', 'images', 'bad'):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    images = write_images(os.path.join(out, 'images'))
    clip, preprocessor = make_clip(out)
    checkpoints, cases, tokenizers = {}, [], {}
    for name, spec in CHECKPOINTS.items():
        if spec['sp_vocab'] not in tokenizers:
            tokenizers[spec['sp_vocab']] = train_tokenizer(spec['sp_vocab'])
        info, made = make_lisa(out, name, spec, clip, preprocessor, tokenizers[spec['sp_vocab']], args.search_seeds)
        checkpoints[name] = info
        cases.extend(made)
    make_bad(out, tokenizers[CHECKPOINTS['lisa-7b']['sp_vocab']], checkpoints['lisa-7b'])
    write_json(os.path.join(out, 'fixtures.json'), {
        'about': 'Tiny LISA/CLIP checkpoints in the published layouts, made by models/reference/make_fixtures.py. '
                 'Each case answers with [SEG] at seg_steps (0-based index into generated_ids) and ends with </s> '
                 '(the last generated id); run_reference.py reproduces generated_ids.',
        'min_margin_asserted': MIN_MARGIN,
        'clip': {'bin': 'clip', 'safetensors': 'clip-safetensors', 'config': clip_configs(CLIP_VISION, CLIP_TEXT)[0]},
        'checkpoints': checkpoints,
        'images': {f'images/{k}': {'width': w, 'height': h, 'strict': k.endswith('.png')} for k, (w, h) in images.items()},
        'cases': cases,
        'bad': {'evil_pickle': 'bad/evil-pickle', 'plain_llama': 'bad/plain-llama'},
        'layout_quirks': {
            'lisa-7b': ['model.layers.0.self_attn.{q,k,v}_proj.weight share one storage (offsets 0, H*H, 2*H*H)',
                        'model.layers.1.mlp.up_proj.weight is a transposed view (strides [1, out])',
                        'zip entries are prefixed with the shard file name, not "archive"'],
            'clip': ['position_ids are int64 (LongStorage)', 'the pickle is an OrderedDict with _metadata (BUILD)'],
        },
    }, sort_keys=False)
    print(f'fixtures written to {out} in {time.time() - started:.1f}s', file=sys.stderr)


if __name__ == '__main__':
    main()
