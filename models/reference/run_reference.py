#!/usr/bin/env python3
"""Runs the PyTorch reference of LISA on one image and one or more questions and writes what a
converted pack must reproduce: OUT/result.json plus raw little-endian float32 (.f32) and uint8
(.u8) tensors. Each extra --question is a follow-up with the earlier answers in the history.

  python3 models/reference/run_reference.py --checkpoint DIR/lisa-7b --vision-tower DIR/clip \
      --image IMG --question "Q1" [--question "Q2" ...] [--max-new-tokens N] --out OUTDIR
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lisa import Lisa, TEMPLATES  # noqa: E402

IMAGE_TENSORS = ['clip_pixel_values', 'image_features', 'sam_pixel_values', 'sam_image_embeddings']
TURN_TENSORS = ['step_logits', 'seg_hidden', 'seg_embeddings', 'low_res_masks', 'iou_predictions']


def write_tensor(out_dir, rel, tensor, dtype):
    array = np.ascontiguousarray(tensor.detach().cpu().numpy().astype(dtype))
    path = os.path.join(out_dir, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(array.astype(array.dtype.newbyteorder('<')).tobytes())
    return {'file': rel, 'shape': list(array.shape), 'dtype': 'float32' if dtype == np.float32 else 'uint8'}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--checkpoint', required=True, help='LISA checkpoint folder (config.json, weights, tokenizer)')
    parser.add_argument('--vision-tower', required=True, help='CLIP checkpoint folder (config.json, preprocessor_config.json, weights)')
    parser.add_argument('--image', required=True)
    parser.add_argument('--question', action='append', required=True, help='repeat for follow-up turns')
    parser.add_argument('--max-new-tokens', type=int, default=512)
    parser.add_argument('--template', choices=sorted(TEMPLATES), default='llava_v1')
    parser.add_argument('--out', required=True)
    args = parser.parse_args(argv)

    # One thread: the machines that run this are small and shared; more threads only contend.
    torch.set_num_threads(1)
    started = time.time()
    model = Lisa.load(args.checkpoint, args.vision_tower, args.template)
    image, turns = model.conversation(args.image, args.question, args.max_new_tokens)

    os.makedirs(args.out, exist_ok=True)
    image_files = {name: write_tensor(args.out, f'image/{name}.f32', image[name], np.float32) for name in IMAGE_TENSORS}
    result = {
        'checkpoint': os.path.abspath(args.checkpoint),
        'vision_tower': os.path.abspath(args.vision_tower),
        'image': os.path.abspath(args.image),
        'template': args.template,
        'max_new_tokens': args.max_new_tokens,
        'original_size': list(image['original_hw']),
        'resized_size': list(image['resized_hw']),
        'seg_token_id': model.seg_id,
        'eos_token_id': model.eos_id,
        'turns': [],
    }
    for n, (question, turn) in enumerate(zip(args.question, turns), start=1):
        tensors = dict(image_files)
        for name in TURN_TENSORS:
            tensors[name] = write_tensor(args.out, f'turn{n}/{name}.f32', turn[name], np.float32)
        tensors['masks'] = write_tensor(args.out, f'turn{n}/masks.u8', turn['masks'], np.uint8)
        generated = turn['generated_ids']
        logits = turn['step_logits']
        top2 = torch.topk(logits, 2, dim=-1).values
        result['turns'].append({
            'question': question,
            'prompt': turn['prompt'],
            'prompt_ids': turn['prompt_ids'],
            'generated_ids': generated,
            'stopped_by_eos': bool(generated) and generated[-1] == model.eos_id,
            'text': turn['text'],
            'text_431': turn['text_431'],
            'seg_count': int(turn['seg_hidden'].shape[0]),
            'seg_steps': [j for j, t in enumerate(generated) if t == model.seg_id],
            'min_top2_margin': float((top2[:, 0] - top2[:, 1]).min()) if len(generated) else None,
            'mask_pixels': [int(m.sum()) for m in turn['masks']],
            'tensors': tensors,
        })
    with open(os.path.join(args.out, 'result.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write('\n')
    print(f'reference: {len(turns)} turn(s) in {time.time() - started:.2f}s -> {args.out}', file=sys.stderr)
    return result


if __name__ == '__main__':
    main()
