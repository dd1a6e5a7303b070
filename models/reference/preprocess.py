"""Image preprocessing as LISA's chat.py does it.

- read with OpenCV (colour mode: alpha dropped, EXIF orientation applied), BGR -> RGB;
- CLIP: transformers CLIPImageProcessor on that uint8 array: PIL bicubic resize of
  the shortest side (long side int()-truncated), centre crop, rescale, normalise;
- SAM: ResizeLongestSide (PIL bilinear to int(x*scale+0.5)), normalise on 0-255, zero pad.
"""
import cv2
import numpy as np
import torch
from PIL import Image

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
SAM_MEAN = [123.675, 116.28, 103.53]
SAM_STD = [58.395, 57.12, 57.375]
PIL_FILTERS = {0: Image.NEAREST, 1: Image.LANCZOS, 2: Image.BILINEAR, 3: Image.BICUBIC, 4: Image.BOX, 5: Image.HAMMING}


def read_image(path):
    image = cv2.imread(path)
    if image is None:
        raise ValueError(f'{path} cannot be read as an image')
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def clip_pixel_values(image, preprocessor=None):
    """uint8 RGB [h,w,3] -> float32 [1,3,S,S]."""
    cfg = preprocessor or {}
    size = cfg.get('size', 224)
    size = size['shortest_edge'] if isinstance(size, dict) else size
    crop = cfg.get('crop_size', size)
    crop_h, crop_w = (crop['height'], crop['width']) if isinstance(crop, dict) else (crop, crop)
    mean = np.array(cfg.get('image_mean', CLIP_MEAN), dtype=np.float32)
    std = np.array(cfg.get('image_std', CLIP_STD), dtype=np.float32)
    resample = PIL_FILTERS[cfg.get('resample', 3)]
    h, w = image.shape[:2]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_h, new_w = (new_long, new_short) if w <= h else (new_short, new_long)
    resized = np.array(Image.fromarray(image).resize((new_w, new_h), resample=resample))
    top, left = (new_h - crop_h) // 2, (new_w - crop_w) // 2
    if top < 0 or left < 0:
        raise ValueError('centre crop larger than the resized image is not covered')
    cropped = resized[top:top + crop_h, left:left + crop_w]
    scaled = (cropped * (1 / 255)).astype(np.float32)
    normalised = (scaled - mean) / std
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))[None]


def sam_resized_size(h, w, target=1024):
    scale = target * 1.0 / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def sam_pixel_values(image, target=1024):
    """uint8 RGB [h,w,3] -> (float32 [1,3,1024,1024], (resized_h, resized_w))."""
    h, w = image.shape[:2]
    new_h, new_w = sam_resized_size(h, w, target)
    resized = np.array(Image.fromarray(image).resize((new_w, new_h), resample=Image.BILINEAR))
    x = torch.from_numpy(resized).permute(2, 0, 1).contiguous()
    x = (x - torch.tensor(SAM_MEAN).view(-1, 1, 1)) / torch.tensor(SAM_STD).view(-1, 1, 1)
    x = torch.nn.functional.pad(x, (0, target - new_w, 0, target - new_h))
    return x[None], (new_h, new_w)
