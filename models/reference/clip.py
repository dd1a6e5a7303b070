"""CLIP vision tower (transformers CLIPVisionModel) and LISA's feature selection + mm_projector."""
import torch
import torch.nn.functional as F


class ClipVisionConfig:
    def __init__(self, config):
        vision = config.get('vision_config', config)
        self.hidden = vision['hidden_size']
        self.layers = vision['num_hidden_layers']
        self.heads = vision['num_attention_heads']
        self.patch = vision['patch_size']
        self.image_size = vision['image_size']
        self.eps = vision.get('layer_norm_eps', 1e-5)
        self.act = vision.get('hidden_act', 'quick_gelu')
        if self.act != 'quick_gelu':
            raise ValueError(f'CLIP hidden_act {self.act} is not the quick_gelu of clip-vit-large-patch14')


def _linear(x, w, prefix):
    return F.linear(x, w[prefix + '.weight'], w[prefix + '.bias'])


def _layer_norm(x, w, prefix, eps):
    return F.layer_norm(x, (x.shape[-1],), w[prefix + '.weight'], w[prefix + '.bias'], eps)


class ClipVision:
    def __init__(self, cfg, weights, prefix='vision_model.'):
        self.cfg = cfg
        self.w = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}

    def _layer(self, i, h):
        cfg, w, p = self.cfg, self.w, f'encoder.layers.{i}.'
        t, d = h.shape
        hd = d // cfg.heads
        x = _layer_norm(h, w, p + 'layer_norm1', cfg.eps)
        q = (_linear(x, w, p + 'self_attn.q_proj') * hd ** -0.5).view(t, cfg.heads, hd).transpose(0, 1)
        k = _linear(x, w, p + 'self_attn.k_proj').view(t, cfg.heads, hd).transpose(0, 1)
        v = _linear(x, w, p + 'self_attn.v_proj').view(t, cfg.heads, hd).transpose(0, 1)
        attn = torch.softmax(q @ k.transpose(1, 2), dim=-1)
        h = h + _linear((attn @ v).transpose(0, 1).reshape(t, d), w, p + 'self_attn.out_proj')
        x = _layer_norm(h, w, p + 'layer_norm2', cfg.eps)
        x = _linear(x, w, p + 'mlp.fc1')
        x = x * torch.sigmoid(1.702 * x)
        return h + _linear(x, w, p + 'mlp.fc2')

    @torch.no_grad()
    def hidden_states(self, pixel_values, upto):
        """hidden_states[0..upto] of CLIPVisionModel(output_hidden_states=True) for one image [1,3,S,S]."""
        cfg, w = self.cfg, self.w
        patches = F.conv2d(pixel_values, w['embeddings.patch_embedding.weight'], stride=cfg.patch)
        patches = patches.flatten(2).transpose(1, 2)[0]
        h = torch.cat([w['embeddings.class_embedding'][None, :], patches], dim=0)
        h = h + w['embeddings.position_embedding.weight'][: h.shape[0]]
        h = _layer_norm(h, w, 'pre_layrnorm', cfg.eps)
        states = [h]
        for i in range(upto):
            h = self._layer(i, h)
            states.append(h)
        return states

    def select_features(self, pixel_values, select_layer):
        """LISA's feature_select: hidden_states[select_layer], CLS dropped -> [256, hidden]."""
        index = select_layer if select_layer >= 0 else self.cfg.layers + 1 + select_layer
        states = self.hidden_states(pixel_values, index)
        return states[index][1:]


def project(features, lisa_weights):
    return F.linear(features, lisa_weights['model.mm_projector.weight'], lisa_weights['model.mm_projector.bias'])
