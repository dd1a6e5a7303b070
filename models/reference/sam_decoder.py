"""SAM's prompt encoder (text embeddings only) and LISA's two-way-transformer mask decoder, plus
the mask postprocess of Sam.postprocess_masks. Float32 throughout."""
import math

import torch
import torch.nn.functional as F

from sam_encoder import layer_norm_2d

PE = 'model.visual_model.prompt_encoder.'
MD = 'model.visual_model.mask_decoder.'
# SAM builds its two-way transformer with 8 heads; no tensor shape records it.
TWO_WAY_HEADS = 8


def _linear(x, w, p):
    return F.linear(x, w[p + '.weight'], w[p + '.bias'])


def dense_positional_encoding(w, size):
    """PositionEmbeddingRandom over a size x size grid of cell centres -> [1, C, size, size]."""
    gaussian = w[PE + 'pe_layer.positional_encoding_gaussian_matrix']
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(centres, centres, indexing='ij')
    coords = 2 * torch.stack([x, y], dim=-1) - 1
    coords = 2 * math.pi * (coords @ gaussian)
    return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1).permute(2, 0, 1)[None]


def _attention(w, p, q, k, v, heads=TWO_WAY_HEADS):
    q, k, v = _linear(q, w, p + 'q_proj'), _linear(k, w, p + 'k_proj'), _linear(v, w, p + 'v_proj')
    b, nq, c = q.shape
    split = lambda t: t.reshape(b, t.shape[1], heads, c // heads).transpose(1, 2)
    q, k, v = split(q), split(k), split(v)
    attn = torch.softmax((q @ k.transpose(2, 3)) / math.sqrt(c // heads), dim=-1)
    out = (attn @ v).transpose(1, 2).reshape(b, nq, c)
    return _linear(out, w, p + 'out_proj')


def _norm(x, w, p):
    return F.layer_norm(x, (x.shape[-1],), w[p + '.weight'], w[p + '.bias'], 1e-5)


def _two_way_layer(w, p, queries, keys, query_pe, key_pe, first):
    if first:
        queries = _attention(w, p + 'self_attn.', queries, queries, queries)
    else:
        q = queries + query_pe
        queries = queries + _attention(w, p + 'self_attn.', q, q, queries)
    queries = _norm(queries, w, p + 'norm1')
    queries = queries + _attention(w, p + 'cross_attn_token_to_image.', queries + query_pe, keys + key_pe, keys)
    queries = _norm(queries, w, p + 'norm2')
    queries = queries + _linear(F.relu(_linear(queries, w, p + 'mlp.lin1')), w, p + 'mlp.lin2')
    queries = _norm(queries, w, p + 'norm3')
    keys = keys + _attention(w, p + 'cross_attn_image_to_token.', keys + key_pe, queries + query_pe, queries)
    keys = _norm(keys, w, p + 'norm4')
    return queries, keys


def _mlp(w, p, x):
    layers = 0
    while f'{p}.layers.{layers}.weight' in w:
        layers += 1
    for i in range(layers):
        x = _linear(x, w, f'{p}.layers.{i}')
        if i < layers - 1:
            x = F.relu(x)
    return x


class SamMaskDecoder:
    def __init__(self, weights):
        self.w = weights
        self.grid = 64
        self.image_pe = dense_positional_encoding(weights, self.grid)

    @torch.no_grad()
    def __call__(self, image_embeddings, seg_embeddings):
        """image_embeddings [1,256,64,64], seg_embeddings [N,256] -> low_res_masks [N,1,256,256], iou [N,1]."""
        w = self.w
        n = seg_embeddings.shape[0]
        sparse = seg_embeddings[:, None, :]
        dense = w[PE + 'no_mask_embed.weight'].reshape(1, -1, 1, 1).expand(n, -1, self.grid, self.grid)
        output_tokens = torch.cat([w[MD + 'iou_token.weight'], w[MD + 'mask_tokens.weight']], dim=0)
        mask_count = w[MD + 'mask_tokens.weight'].shape[0]
        tokens = torch.cat([output_tokens[None].expand(n, -1, -1), sparse], dim=1)
        src = image_embeddings.expand(n, -1, -1, -1) + dense
        b, c, h, wd = src.shape
        keys = src.flatten(2).permute(0, 2, 1)
        key_pe = self.image_pe.expand(n, -1, -1, -1).flatten(2).permute(0, 2, 1)
        queries = tokens
        t = MD + 'transformer.'
        layer = 0
        while f'{t}layers.{layer}.norm1.weight' in w:
            queries, keys = _two_way_layer(w, f'{t}layers.{layer}.', queries, keys, tokens, key_pe, layer == 0)
            layer += 1
        queries = queries + _attention(w, t + 'final_attn_token_to_image.', queries + tokens, keys + key_pe, keys)
        queries = _norm(queries, w, t + 'norm_final_attn')
        iou_out = queries[:, 0, :]
        mask_out = queries[:, 1:1 + mask_count, :]
        src = keys.transpose(1, 2).reshape(b, c, h, wd)
        up = F.conv_transpose2d(src, w[MD + 'output_upscaling.0.weight'], w[MD + 'output_upscaling.0.bias'], stride=2)
        up = F.gelu(layer_norm_2d(up, w[MD + 'output_upscaling.1.weight'], w[MD + 'output_upscaling.1.bias']))
        up = F.gelu(F.conv_transpose2d(up, w[MD + 'output_upscaling.3.weight'], w[MD + 'output_upscaling.3.bias'], stride=2))
        hyper = torch.stack([_mlp(w, f'{MD}output_hypernetworks_mlps.{i}', mask_out[:, i, :]) for i in range(mask_count)], dim=1)
        bu, cu, hu, wu = up.shape
        masks = (hyper @ up.view(bu, cu, hu * wu)).view(bu, mask_count, hu, wu)
        iou = _mlp(w, MD + 'iou_prediction_head', iou_out)
        # multimask_output=False: the first mask and its IoU only.
        return masks[:, 0:1], iou[:, 0:1]


def postprocess_masks(low_res_masks, resized_hw, original_hw, size=1024):
    """low_res [N,1,256,256] -> boolean masks [N,h,w] (bilinear, half-pixel, crop, bilinear, > 0)."""
    masks = F.interpolate(low_res_masks, (size, size), mode='bilinear', align_corners=False)
    masks = masks[..., : resized_hw[0], : resized_hw[1]]
    masks = F.interpolate(masks, tuple(original_hw), mode='bilinear', align_corners=False)
    return masks[:, 0] > 0
