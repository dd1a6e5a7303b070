"""Seeded random weights for the fixture checkpoints, named and ordered as the published
state dicts are (HF module registration order), scaled so that every part matters:
attention is peaked enough that rotary positions change the answer, LayerNorm/RMSNorm
weights are not 1, SAM's masks follow the image's regions.
"""
import collections

import torch

BF16 = torch.bfloat16


class Rand:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def n(self, *shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=self.g) * std + mean

    def smooth_1d(self, length, channels, std, waves=3):
        """A table [length, channels] varying slowly along its rows (like learned relative positions)."""
        t = torch.arange(length, dtype=torch.float32) / length
        table = torch.zeros(length, channels)
        for _ in range(waves):
            f, phase = self.n(2, std=1.5)
            table += torch.sin(6.2832 * f * t + phase)[:, None] * self.n(channels, std=std)
        return table

    def smooth(self, size, channels, std, waves=4):
        """A spatially smooth field [size, size, channels]: a few random low-frequency waves."""
        coords = torch.arange(size, dtype=torch.float32) / size
        y, x = torch.meshgrid(coords, coords, indexing='ij')
        field = torch.zeros(size, size, channels)
        for _ in range(waves):
            fy, fx, phase = self.n(3, std=2.0)
            field += torch.sin(6.2832 * (fy * y + fx * x) + phase)[:, :, None] * self.n(channels, std=std)
        return field


def _ln(r, out, prefix, dim, dtype=torch.float32):
    out[prefix + '.weight'] = (1 + r.n(dim, std=0.15)).to(dtype)
    out[prefix + '.bias'] = r.n(dim, std=0.1).to(dtype)


def _linear(r, out, prefix, n_out, n_in, gain=1.0, bias=True, dtype=torch.float32):
    out[prefix + '.weight'] = r.n(n_out, n_in, std=gain / n_in ** 0.5).to(dtype)
    if bias:
        out[prefix + '.bias'] = r.n(n_out, std=0.05 * gain).to(dtype)


def clip_state_dict(seed, v, t):
    """openai/clip-vit-large-patch14 layout (text tower, vision tower, projections, logit_scale)."""
    r, sd = Rand(seed), collections.OrderedDict()
    for tower, c in (('text_model', t), ('vision_model', v)):
        d, p = c['hidden_size'], tower + '.'
        if tower == 'text_model':
            sd[p + 'embeddings.token_embedding.weight'] = r.n(c['vocab_size'], d, std=0.5)
            sd[p + 'embeddings.position_embedding.weight'] = r.n(c['max_position_embeddings'], d, std=0.2)
            positions = c['max_position_embeddings']
        else:
            sd[p + 'embeddings.class_embedding'] = r.n(d, std=0.5)
            sd[p + 'embeddings.patch_embedding.weight'] = r.n(d, 3, c['patch_size'], c['patch_size'], std=1.5 / (3 * c['patch_size'] ** 2) ** 0.5)
            positions = (c['image_size'] // c['patch_size']) ** 2 + 1
            sd[p + 'embeddings.position_embedding.weight'] = r.n(positions, d, std=0.3)
        # A buffer made with arange(...).expand((1, -1)), saved as int64 (LongStorage).
        sd[p + 'embeddings.position_ids'] = torch.arange(positions).expand((1, -1))
        if tower == 'vision_model':
            _ln(r, sd, p + 'pre_layrnorm', d)
        for i in range(c['num_hidden_layers']):
            q = f'{p}encoder.layers.{i}.'
            for name in ('k_proj', 'v_proj', 'q_proj'):
                _linear(r, sd, q + 'self_attn.' + name, d, d, gain=2.0 if name != 'v_proj' else 1.0)
            _linear(r, sd, q + 'self_attn.out_proj', d, d, gain=0.7)
            _ln(r, sd, q + 'layer_norm1', d)
            _linear(r, sd, q + 'mlp.fc1', c['intermediate_size'], d, gain=1.5)
            _linear(r, sd, q + 'mlp.fc2', d, c['intermediate_size'], gain=0.7)
            _ln(r, sd, q + 'layer_norm2', d)
        _ln(r, sd, p + ('final_layer_norm' if tower == 'text_model' else 'post_layernorm'), d)
    sd['visual_projection.weight'] = r.n(v['projection_dim'], v['hidden_size'], std=0.2)
    sd['text_projection.weight'] = r.n(t['projection_dim'], t['hidden_size'], std=0.2)
    sd['logit_scale'] = torch.tensor(2.6592)
    return sd


def llama_part(r, sd, c):
    h, inter, layers = c['hidden_size'], c['intermediate_size'], c['num_hidden_layers']
    kv = c['num_key_value_heads'] * (h // c['num_attention_heads'])
    sd['model.embed_tokens.weight'] = r.n(c['vocab_size'], h, std=1.0).to(BF16)
    head_dim = h // c['num_attention_heads']
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    for i in range(layers):
        p = f'model.layers.{i}.'
        _linear(r, sd, p + 'self_attn.q_proj', h, h, gain=2.2, bias=False, dtype=BF16)
        _linear(r, sd, p + 'self_attn.k_proj', kv, h, gain=2.2, bias=False, dtype=BF16)
        _linear(r, sd, p + 'self_attn.v_proj', kv, h, gain=1.0, bias=False, dtype=BF16)
        _linear(r, sd, p + 'self_attn.o_proj', h, h, gain=1.0, bias=False, dtype=BF16)
        sd[p + 'self_attn.rotary_emb.inv_freq'] = inv_freq.to(BF16)
        _linear(r, sd, p + 'mlp.gate_proj', inter, h, gain=1.5, bias=False, dtype=BF16)
        _linear(r, sd, p + 'mlp.up_proj', inter, h, gain=1.0, bias=False, dtype=BF16)
        _linear(r, sd, p + 'mlp.down_proj', h, inter, gain=1.0, bias=False, dtype=BF16)
        sd[p + 'input_layernorm.weight'] = (1 + r.n(h, std=0.15)).to(BF16)
        sd[p + 'post_attention_layernorm.weight'] = (1 + r.n(h, std=0.15)).to(BF16)
    sd['model.norm.weight'] = (1 + r.n(h, std=0.1)).to(BF16)


def sam_encoder_part(r, sd, dim=32, depth=2, heads=2, window=14, global_blocks=(1,), grid=64, patch=16, out=256):
    p = 'model.visual_model.image_encoder.'
    sd[p + 'pos_embed'] = r.smooth(grid, dim, std=0.3)[None]
    sd[p + 'patch_embed.proj.weight'] = r.n(dim, 3, patch, patch, std=2.0 / (3 * patch * patch) ** 0.5)
    sd[p + 'patch_embed.proj.bias'] = r.n(dim, std=0.1)
    head_dim = dim // heads
    for i in range(depth):
        b = f'{p}blocks.{i}.'
        rows = 2 * grid - 1 if i in global_blocks else 2 * window - 1
        _ln(r, sd, b + 'norm1', dim)
        _linear(r, sd, b + 'attn.qkv', 3 * dim, dim, gain=1.5)
        _linear(r, sd, b + 'attn.proj', dim, dim, gain=0.8)
        sd[b + 'attn.rel_pos_h'] = r.smooth_1d(rows, head_dim, std=0.3)
        sd[b + 'attn.rel_pos_w'] = r.smooth_1d(rows, head_dim, std=0.3)
        _ln(r, sd, b + 'norm2', dim)
        _linear(r, sd, b + 'mlp.lin1', 4 * dim, dim, gain=1.5)
        _linear(r, sd, b + 'mlp.lin2', dim, 4 * dim, gain=0.8)
    sd[p + 'neck.0.weight'] = r.n(out, dim, 1, 1, std=1 / dim ** 0.5)
    _ln(r, sd, p + 'neck.1', out)
    # Mostly a per-channel mixing at the centre tap: masks stay region-shaped, yet every tap matters.
    neck2 = r.n(out, out, 3, 3, std=0.3 / (9 * out) ** 0.5)
    neck2[:, :, 1, 1] += r.n(out, out, std=1 / out ** 0.5)
    sd[p + 'neck.2.weight'] = neck2
    _ln(r, sd, p + 'neck.3', out)


def sam_prompt_part(r, sd, dim=256, mask_in=16):
    p = 'model.visual_model.prompt_encoder.'
    sd[p + 'pe_layer.positional_encoding_gaussian_matrix'] = r.n(2, dim // 2)
    for i in range(4):
        sd[f'{p}point_embeddings.{i}.weight'] = r.n(1, dim)
    sd[p + 'not_a_point_embed.weight'] = r.n(1, dim)
    sd[p + 'mask_downscaling.0.weight'] = r.n(mask_in // 4, 1, 2, 2, std=0.5)
    sd[p + 'mask_downscaling.0.bias'] = r.n(mask_in // 4, std=0.1)
    _ln(r, sd, p + 'mask_downscaling.1', mask_in // 4)
    sd[p + 'mask_downscaling.3.weight'] = r.n(mask_in, mask_in // 4, 2, 2, std=0.25)
    sd[p + 'mask_downscaling.3.bias'] = r.n(mask_in, std=0.1)
    _ln(r, sd, p + 'mask_downscaling.4', mask_in)
    sd[p + 'mask_downscaling.6.weight'] = r.n(dim, mask_in, 1, 1, std=0.25)
    sd[p + 'mask_downscaling.6.bias'] = r.n(dim, std=0.1)
    sd[p + 'no_mask_embed.weight'] = r.n(1, dim, std=0.3)


def _attn(r, sd, p, dim, internal):
    for name in ('q_proj', 'k_proj', 'v_proj'):
        _linear(r, sd, p + name, internal, dim, gain=1.5)
    _linear(r, sd, p + 'out_proj', dim, internal, gain=0.8)


def sam_mask_decoder_part(r, sd, dim=256, mlp=256, masks=4):
    p = 'model.visual_model.mask_decoder.'
    t = p + 'transformer.'
    for i in range(2):
        b = f'{t}layers.{i}.'
        _attn(r, sd, b + 'self_attn.', dim, dim)
        _ln(r, sd, b + 'norm1', dim)
        _attn(r, sd, b + 'cross_attn_token_to_image.', dim, dim // 2)
        _ln(r, sd, b + 'norm2', dim)
        _linear(r, sd, b + 'mlp.lin1', mlp, dim, gain=1.5)
        _linear(r, sd, b + 'mlp.lin2', dim, mlp, gain=0.8)
        _ln(r, sd, b + 'norm3', dim)
        _ln(r, sd, b + 'norm4', dim)
        _attn(r, sd, b + 'cross_attn_image_to_token.', dim, dim // 2)
    _attn(r, sd, t + 'final_attn_token_to_image.', dim, dim // 2)
    _ln(r, sd, t + 'norm_final_attn', dim)
    sd[p + 'iou_token.weight'] = r.n(1, dim)
    sd[p + 'mask_tokens.weight'] = r.n(masks, dim)
    # Transposed-conv kernels: a shared part plus a smaller per-tap part, so the 4x upscaling
    # keeps regions smooth while a wrong tap order still shows.
    for idx, (cin, cout) in (('0', (dim, dim // 4)), ('3', (dim // 4, dim // 8))):
        shared = r.n(cin, cout, 1, 1, std=1.5 / cin ** 0.5)
        sd[f"{p}output_upscaling.{idx}.weight"] = shared + r.n(cin, cout, 2, 2, std=0.08 / cin ** 0.5)
        sd[f'{p}output_upscaling.{idx}.bias'] = r.n(cout, std=0.1)
        if idx == '0':
            _ln(r, sd, p + 'output_upscaling.1', dim // 4)
    for m in range(masks):
        for j, (n_out, n_in) in enumerate(((dim, dim), (dim, dim), (dim // 8, dim))):
            _linear(r, sd, f'{p}output_hypernetworks_mlps.{m}.layers.{j}', n_out, n_in, gain=1.5)
    for j, (n_out, n_in) in enumerate(((dim, dim), (dim, dim), (masks, dim))):
        _linear(r, sd, f'{p}iou_prediction_head.layers.{j}', n_out, n_in, gain=1.2)


def lisa_state_dict(seed, c, sam_seed):
    """LISA's merged checkpoint: LLaMA + mm_projector (bf16), SAM + text_hidden_fcs (f32), lm_head (bf16)."""
    r, sd = Rand(seed), collections.OrderedDict()
    llama_part(r, sd, c)
    sd['model.mm_projector.weight'] = r.n(c['hidden_size'], c['mm_hidden_size'], std=1.2 / c['mm_hidden_size'] ** 0.5).to(BF16)
    sd['model.mm_projector.bias'] = r.n(c['hidden_size'], std=0.1).to(BF16)
    sam_encoder_part(Rand(sam_seed), sd)
    sam_prompt_part(Rand(sam_seed + 1), sd)
    sam_mask_decoder_part(Rand(sam_seed + 2), sd)
    h = c['hidden_size']
    _linear(r, sd, 'model.text_hidden_fcs.0.0', h, h, gain=1.5)
    _linear(r, sd, 'model.text_hidden_fcs.0.2', c['out_dim'], h, gain=1.0)
    sd['lm_head.weight'] = r.n(c['vocab_size'], h, std=1.0).to(BF16)
    return sd


def as_float32(sd):
    """The values the reference computes with (bf16 widened exactly)."""
    return {k: (v.to(torch.float32) if v.is_floating_point() else v) for k, v in sd.items()}
