"""How transformers 4.31 reads a LLaMA checkpoint's token files: AddedToken, and which JSON
values become AddedTokens (only tagged dicts in tokenizer_config.json, any dict in
special_tokens_map.json). Used by llama_tokenizer.py."""
import json
import os
from dataclasses import dataclass

SPECIAL_ATTRIBUTES = ('bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token')
ADDED_TOKEN_KEYS = ('content', 'single_word', 'lstrip', 'rstrip', 'normalized')


@dataclass(frozen=True)
class AddedToken:
    content: str
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = True

    def __str__(self):
        return self.content

    @classmethod
    def from_dict(cls, value):
        # Newer files also carry "special" (and "__type"): 4.31 never reads them.
        return cls(**{k: v for k, v in value.items() if k in ADDED_TOKEN_KEYS})


def read_json(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def config_token(value):
    """tokenizer_config.json: only {"__type": "AddedToken", ...} dicts are AddedTokens."""
    if isinstance(value, dict):
        if value.get('__type') == 'AddedToken':
            return AddedToken.from_dict(value)
        raise ValueError(f'tokenizer_config.json: a special token must be a string or an AddedToken, not {value}')
    if isinstance(value, list):
        return [config_token(v) for v in value]
    return value


def map_token(value):
    """special_tokens_map.json: any dict is an AddedToken."""
    if isinstance(value, dict):
        return AddedToken.from_dict(value)
    if isinstance(value, list):
        return [map_token(v) for v in value]
    return value
