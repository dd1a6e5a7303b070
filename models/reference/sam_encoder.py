"""SAM's ViT image encoder (segment_anything ImageEncoderViT), float32.

No config file carries its sizes: they are read from the tensor shapes, as the
converter must do (CONVERTER.md).
"""
import torch
import torch.nn.functional as F

PREFIX = 'model.visual_model.image_encoder.'


def layer_norm_2d(x, weight, bias, eps=1e-6):
    mean = x.mean(1, keepdim=True)
    var = (x - mean).pow(2).mean(1, keepdim=True)
    x = (x - mean) / torch.sqrt(var + eps)
    return weight[:, None, None] * x + bias[:, None, None]


class SamEncoderSpec:
    def __init__(self, w):
        self.dim = w[PREFIX + 'patch_embed.proj.weight'].shape[0]
        self.patch = w[PREFIX + 'patch_embed.proj.weight'].shape[2]
        self.grid = w[PREFIX + 'pos_embed'].shape[1]
        self.depth = 0
        while f'{PREFIX}blocks.{self.depth}.norm1.weight' in w:
            self.depth += 1
        self.head_dim = w[PREFIX + 'blocks.0.attn.rel_pos_h'].shape[1]
        self.heads = self.dim // self.head_dim
        self.windows = []
        for i in range(self.depth):
            rows = w[f'{PREFIX}blocks.{i}.attn.rel_pos_h'].shape[0]
            self.windows.append(0 if rows == 2 * self.grid - 1 else (rows + 1) // 2)


def _rel_table(size, rel_pos):
    coords = torch.arange(size)[:, None] - torch.arange(size)[None, :] + (size - 1)
    return rel_pos[coords]


def _attention(w, p, x, heads):
    b, h, wd, c = x.shape
    hd = c // heads
    qkv = F.linear(x, w[p + 'qkv.weight'], w[p + 'qkv.bias']).reshape(b, h * wd, 3, heads, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, b * heads, h * wd, hd).unbind(0)
    attn = (q * hd ** -0.5) @ k.transpose(-2, -1)
    # Decomposed relative positions use the unscaled queries.
    rh = _rel_table(h, w[p + 'rel_pos_h'])
    rw = _rel_table(wd, w[p + 'rel_pos_w'])
    rq = q.reshape(b * heads, h, wd, hd)
    rel_h = torch.einsum('bhwc,hkc->bhwk', rq, rh)
    rel_w = torch.einsum('bhwc,wkc->bhwk', rq, rw)
    attn = (attn.view(b * heads, h, wd, h, wd) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).view(b * heads, h * wd, h * wd)
    attn = attn.softmax(dim=-1)
    out = (attn @ v).view(b, heads, h, wd, hd).permute(0, 2, 3, 1, 4).reshape(b, h, wd, c)
    return F.linear(out, w[p + 'proj.weight'], w[p + 'proj.bias'])


def _windowed(fn, x, window):
    b, h, wd, c = x.shape
    ph, pw = (window - h % window) % window, (window - wd % window) % window
    # Zero padding after norm1: the padded cells take part in the window attention.
    x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, wd + pw
    win = x.view(b, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c)
    out = fn(win)
    out = out.view(b, hp // window, wp // window, window, window, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
    return out[:, :h, :wd, :]


class SamImageEncoder:
    def __init__(self, weights):
        self.w = weights
        self.spec = SamEncoderSpec(weights)

    def _block(self, i, x):
        w, s, p = self.w, self.spec, f'{PREFIX}blocks.{i}.'
        y = F.layer_norm(x, (s.dim,), w[p + 'norm1.weight'], w[p + 'norm1.bias'], 1e-6)
        attend = lambda t: _attention(w, p + 'attn.', t, s.heads)
        y = _windowed(attend, y, s.windows[i]) if s.windows[i] > 0 else attend(y)
        x = x + y
        y = F.layer_norm(x, (s.dim,), w[p + 'norm2.weight'], w[p + 'norm2.bias'], 1e-6)
        y = F.linear(F.gelu(F.linear(y, w[p + 'mlp.lin1.weight'], w[p + 'mlp.lin1.bias'])), w[p + 'mlp.lin2.weight'], w[p + 'mlp.lin2.bias'])
        return x + y

    @torch.no_grad()
    def __call__(self, pixel_values):
        """pixel_values [1,3,1024,1024] -> image_embeddings [1,256,64,64]."""
        w, s = self.w, self.spec
        x = F.conv2d(pixel_values, w[PREFIX + 'patch_embed.proj.weight'], w[PREFIX + 'patch_embed.proj.bias'], stride=s.patch)
        x = x.permute(0, 2, 3, 1) + w[PREFIX + 'pos_embed']
        for i in range(s.depth):
            x = self._block(i, x)
        x = x.permute(0, 3, 1, 2)
        x = F.conv2d(x, w[PREFIX + 'neck.0.weight'])
        x = layer_norm_2d(x, w[PREFIX + 'neck.1.weight'], w[PREFIX + 'neck.1.bias'])
        x = F.conv2d(x, w[PREFIX + 'neck.2.weight'], padding=1)
        return layer_norm_2d(x, w[PREFIX + 'neck.3.weight'], w[PREFIX + 'neck.3.bias'])
