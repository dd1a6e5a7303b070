"""LLaMA as transformers 4.31 computes it, in float32.

The reference generates with use_cache=False: every step runs the whole
sequence again (`forward`). `forward_cached` is the same computation with a
KV cache, for the fixture maker, which has to simulate many generations.
"""
import math

import torch


class LlamaConfig:
    def __init__(self, config):
        self.hidden = config['hidden_size']
        self.intermediate = config['intermediate_size']
        self.layers = config['num_hidden_layers']
        self.heads = config['num_attention_heads']
        self.kv_heads = config.get('num_key_value_heads') or self.heads
        self.head_dim = self.hidden // self.heads
        self.eps = config['rms_norm_eps']
        self.vocab = config['vocab_size']
        self.rope_theta = config.get('rope_theta', 10000.0)
        self.max_positions = config['max_position_embeddings']
        if config.get('rope_scaling'):
            raise ValueError('rope_scaling is not part of the LISA checkpoints this reference covers')


def rms_norm(x, weight, eps):
    # 4.31 normalises in float32 and casts back before the weight multiply.
    dtype = x.dtype
    x32 = x.to(torch.float32)
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(dtype)


def rotary_tables(cfg, length):
    # Recomputed like LlamaRotaryEmbedding; the checkpoint's rotary_emb.inv_freq is ignored.
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim))
    t = torch.arange(length, dtype=inv_freq.dtype)
    freqs = torch.einsum('i,j->ij', t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Llama:
    def __init__(self, cfg, weights):
        self.cfg = cfg
        self.w = weights

    def embed(self, ids):
        return self.w['model.embed_tokens.weight'][torch.as_tensor(ids, dtype=torch.long)]

    def _attention(self, i, x, cos, sin, mask, cache=None):
        cfg, w, p = self.cfg, self.w, f'model.layers.{i}.self_attn.'
        t = x.shape[0]
        q = (x @ w[p + 'q_proj.weight'].T).view(t, cfg.heads, cfg.head_dim).transpose(0, 1)
        k = (x @ w[p + 'k_proj.weight'].T).view(t, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
        v = (x @ w[p + 'v_proj.weight'].T).view(t, cfg.kv_heads, cfg.head_dim).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if i in cache:
                k = torch.cat([cache[i][0], k], dim=1)
                v = torch.cat([cache[i][1], v], dim=1)
            cache[i] = (k, v)
        groups = cfg.heads // cfg.kv_heads
        if groups > 1:
            k = k.repeat_interleave(groups, dim=0)
            v = v.repeat_interleave(groups, dim=0)
        scores = (q @ k.transpose(1, 2)) / math.sqrt(cfg.head_dim) + mask
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = (probs @ v).transpose(0, 1).reshape(t, cfg.hidden)
        return out @ w[p + 'o_proj.weight'].T

    def _mlp(self, i, x):
        w, p = self.w, f'model.layers.{i}.mlp.'
        gate = x @ w[p + 'gate_proj.weight'].T
        up = x @ w[p + 'up_proj.weight'].T
        return (torch.nn.functional.silu(gate) * up) @ w[p + 'down_proj.weight'].T

    @torch.no_grad()
    def forward(self, embeds):
        """embeds [T, H] -> (logits [T, V], hidden after the final norm [T, H]); positions 0..T-1."""
        return self.forward_cached(embeds, None)

    @torch.no_grad()
    def forward_cached(self, embeds, cache):
        """As forward, for new positions after those already in `cache` (a dict, filled in place)."""
        cfg, w = self.cfg, self.w
        t = embeds.shape[0]
        past = cache[0][0].shape[1] if cache else 0
        cos, sin = rotary_tables(cfg, past + t)
        cos, sin = cos[past:], sin[past:]
        mask = torch.full((t, past + t), torch.finfo(torch.float32).min).triu(past + 1)
        h = embeds.to(torch.float32)
        for i in range(cfg.layers):
            p = f'model.layers.{i}.'
            h = h + self._attention(i, rms_norm(h, w[p + 'input_layernorm.weight'], cfg.eps), cos, sin, mask, cache)
            h = h + self._mlp(i, rms_norm(h, w[p + 'post_attention_layernorm.weight'], cfg.eps))
        hidden = rms_norm(h, w['model.norm.weight'], cfg.eps)
        return hidden @ w['lm_head.weight'].T, hidden
