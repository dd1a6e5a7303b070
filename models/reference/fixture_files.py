"""The small files of the fixture checkpoints: config.json files with the published key names,
the sentencepiece tokenizer and the tokenizer files transformers 4.31 saves, test images, and
the checkpoints the converter must refuse."""
import io
import json
import os
import struct
import zipfile

import numpy as np
import sentencepiece as spm
from PIL import Image, ImageDraw

from fixture_corpus import corpus


def write_json(path, value, sort_keys=True):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(value, f, indent=2, sort_keys=sort_keys, ensure_ascii=False)
        f.write('\n')


def train_tokenizer(vocab_size):
    """A BPE sentencepiece model with LLaMA's trainer settings; single-threaded, unshuffled: deterministic."""
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=buffer, model_type='bpe', vocab_size=vocab_size,
        byte_fallback=True, normalization_rule_name='identity', add_dummy_prefix=True,
        remove_extra_whitespaces=False, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, character_coverage=1.0, allow_whitespace_only_pieces=True, split_by_unicode_script=True,
        split_by_number=True, split_by_whitespace=True, max_sentencepiece_length=16,
        shuffle_input_sentence=False, minloglevel=2)
    return buffer.getvalue()


def added_token(content, normalized):
    return {'content': content, 'lstrip': False, 'normalized': normalized, 'rstrip': False, 'single_word': False}


def write_tokenizer_files(directory, model_bytes, added, normalized=True, max_length=512):
    """What LISA's merge script leaves (tokenizer.save_pretrained under transformers 4.31, use_fast=False)."""
    with open(os.path.join(directory, 'tokenizer.model'), 'wb') as f:
        f.write(model_bytes)
    write_json(os.path.join(directory, 'added_tokens.json'), added)
    write_json(os.path.join(directory, 'special_tokens_map.json'), {
        'bos_token': added_token('<s>', normalized), 'eos_token': added_token('</s>', normalized),
        'pad_token': '<unk>', 'unk_token': added_token('<unk>', normalized)})
    typed = lambda content: dict(added_token(content, normalized), __type='AddedToken')
    write_json(os.path.join(directory, 'tokenizer_config.json'), {
        'add_bos_token': True, 'add_eos_token': False, 'bos_token': typed('<s>'),
        'clean_up_tokenization_spaces': False, 'eos_token': typed('</s>'), 'model_max_length': max_length,
        'pad_token': None, 'padding_side': 'right', 'sp_model_kwargs': {}, 'tokenizer_class': 'LlamaTokenizer',
        'unk_token': typed('<unk>')})


def lisa_config(sizes, vocab_size, llama2):
    config = {
        '_name_or_path': 'LISA-13B-llama2-v1' if llama2 else 'LISA-7B-v1',
        'architectures': ['LISAForCausalLM'], 'bos_token_id': 1, 'eos_token_id': 2, 'pad_token_id': 0,
        'freeze_mm_mlp_adapter': True, 'hidden_act': 'silu', 'image_aspect_ratio': 'square',
        'image_grid_pinpoints': None, 'initializer_range': 0.02, 'mm_use_im_patch_token': False,
        'mm_use_im_start_end': True, 'mm_vision_select_feature': 'patch', 'mm_vision_select_layer': -2,
        'mm_vision_tower': 'openai/clip-vit-large-patch14', 'model_type': 'llava', 'out_dim': 256,
        'pretrain_mm_mlp_adapter': None, 'pretraining_tp': 1, 'rope_scaling': None, 'tie_word_embeddings': False,
        'torch_dtype': 'bfloat16', 'train_mask_decoder': True, 'transformers_version': '4.31.0',
        'tune_mm_mlp_adapter': False, 'use_cache': False, 'use_mm_proj': True,
        'vision_tower': 'openai/clip-vit-large-patch14', 'vocab_size': vocab_size,
    }
    config.update(sizes)
    if not llama2:
        config['max_sequence_length'] = sizes['max_position_embeddings']
    return config


def generation_config():
    return {'_from_model_config': True, 'bos_token_id': 1, 'eos_token_id': 2, 'pad_token_id': 0,
            'transformers_version': '4.31.0'}


def clip_configs(vision, text):
    config = {
        '_name_or_path': 'openai/clip-vit-large-patch14', 'architectures': ['CLIPModel'],
        'initializer_factor': 1.0, 'logit_scale_init_value': 2.6592, 'model_type': 'clip',
        'projection_dim': vision['projection_dim'], 'torch_dtype': 'float32', 'transformers_version': '4.21.3',
        'text_config': dict(text, model_type='clip_text_model', hidden_act='quick_gelu', layer_norm_eps=1e-5,
                             bos_token_id=0, eos_token_id=2, pad_token_id=1),
        'vision_config': dict(vision, model_type='clip_vision_model', hidden_act='quick_gelu', layer_norm_eps=1e-5,
                              num_channels=3),
    }
    preprocessor = {
        'crop_size': 224, 'do_center_crop': True, 'do_normalize': True, 'do_resize': True,
        'feature_extractor_type': 'CLIPFeatureExtractor',
        'image_mean': [0.48145466, 0.4578275, 0.40821073], 'image_std': [0.26862954, 0.26130258, 0.27577711],
        'resample': 3, 'size': 224,
    }
    return config, preprocessor


def draw_image(width, height, seed, shapes):
    """A light, gently shaded background with solid shapes: regions SAM's fixture weights tell apart."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width]
    phase = rng.uniform(0, 6.28, size=3)
    base = np.stack([200 + 20 * np.sin(x / 61.0 + phase[0]), 195 + 15 * np.cos(y / 53.0 + phase[1]),
                     180 + 15 * np.sin((x + y) / 71.0 + phase[2])], -1)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for kind, box, colour in shapes:
        if kind == 'circle':
            draw.ellipse(box, fill=colour)
        elif kind == 'square':
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(box, fill=colour)
    return image


def write_images(directory):
    os.makedirs(directory, exist_ok=True)
    landscape = draw_image(320, 240, 1, [('circle', (40, 50, 150, 160), (220, 30, 30)),
                                         ('square', (190, 110, 290, 210), (30, 60, 210)),
                                         ('triangle', [(200, 20), (300, 20), (250, 90)], (40, 170, 60))])
    landscape.save(os.path.join(directory, 'landscape.png'), optimize=False)
    portrait = draw_image(180, 260, 2, [('square', (20, 30, 110, 120), (30, 60, 210)),
                                        ('circle', (70, 150, 170, 250), (220, 30, 30))])
    portrait.save(os.path.join(directory, 'portrait.png'), optimize=False)
    # RGBA: the reference (OpenCV colour mode) drops alpha without compositing.
    rgba = draw_image(200, 150, 3, [('triangle', [(20, 140), (100, 10), (180, 140)], (40, 170, 60))]).convert('RGBA')
    alpha = np.full((150, 200), 255, np.uint8)
    alpha[:, :60] = 0
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(os.path.join(directory, 'alpha.png'), optimize=False)
    # JPEG decoders may differ by a grey level: not used for strict parity cases.
    landscape.save(os.path.join(directory, 'landscape.jpg'), quality=92, subsampling=0, optimize=False)
    return {
        'landscape.png': (320, 240), 'portrait.png': (180, 260), 'alpha.png': (200, 150), 'landscape.jpg': (320, 240),
    }


def _zip_entry(archive, name, data):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    archive.writestr(info, data)


def write_evil_pickle(path):
    """A torch-zip checkpoint whose data.pkl calls os.system when unpickled. Written opcode by
    opcode: nothing here executes it."""
    def text(value):
        raw = value.encode('utf-8')
        return b'X' + struct.pack('<I', len(raw)) + raw  # BINUNICODE

    pickle = (b'\x80\x02' + b'}q\x00'  # PROTO 2, EMPTY_DICT, BINPUT 0
              + text('model.embed_tokens.weight')
              + b'cos\nsystem\n'  # GLOBAL os.system
              + text('echo fixture-pickle-executed') + b'\x85'  # TUPLE1
              + b'R' + b's' + b'.')  # REDUCE, SETITEM, STOP
    prefix = os.path.splitext(os.path.basename(path))[0]
    with zipfile.ZipFile(path, 'w') as archive:
        _zip_entry(archive, f'{prefix}/data.pkl', pickle)
        _zip_entry(archive, f'{prefix}/version', b'3\n')
