"""The slow `LlamaTokenizer` of transformers 4.31 (use_fast=False), as LISA's chat.py uses it.

Written from the 4.31 behaviour (tokenization_utils.py, tokenization_utils_base.py,
tokenization_llama.py) over sentencepiece, with no transformers import, so the PyTorch
reference and the converter's tests share one definition of "the ids LISA sees".

Loading (`from_pretrained`), as 4.31 does it:
- tokenizer_config.json gives add_bos_token (default true), add_eos_token (false), legacy
  (absent -> true), clean_up_tokenization_spaces (false) and the special tokens; only dicts
  tagged `"__type": "AddedToken"` become AddedToken objects there.
- LlamaTokenizer wraps bos/eos/unk/pad given as plain strings into AddedToken(lstrip=False,
  rstrip=False).
- special_tokens_map.json then overrides them: a dict becomes an AddedToken, a plain string
  stays a plain string (and so gets the default stripping below).
- added_tokens.json: sorted by id, each id must be the next free one after the sentencepiece
  vocabulary; they become "no split" tokens. Every special token's text is one too.

tokenize(text):
- legacy false only: "▁" + text with every "▁" replaced by " ".
- split on the no-split tokens, leftmost-longest;
- around each no-split token: an AddedToken strips the whitespace on its side(s) per its
  lstrip/rstrip; anything else (the added tokens, plain-string specials) strips both sides;
- empty pieces are skipped; every other piece goes to sentencepiece on its own (so each gets
  its own dummy-prefix "▁"; legacy false drops that "▁" again for pieces after the first).

decode(ids, skip_special_tokens=False, ...): see `decode`. llama_tokenizer_cli.py answers batches.
"""
import os

import sentencepiece as spm

from llama_tokenizer_files import SPECIAL_ATTRIBUTES, AddedToken, config_token, map_token, read_json

SPIECE_UNDERLINE = '\u2581'


class Encoding(dict):
    """What `tokenizer(text)` returns, enough for LLaVA's `tokenizer(chunk).input_ids`."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as error:
            raise AttributeError(name) from error


class LlamaTokenizer431:
    def __init__(self, vocab_file, unk_token='<unk>', bos_token='<s>', eos_token='</s>', pad_token=None,
                 add_bos_token=True, add_eos_token=False, clean_up_tokenization_spaces=False, legacy=None,
                 additional_special_tokens=None):
        wrap = lambda t: AddedToken(t, lstrip=False, rstrip=False) if isinstance(t, str) else t  # noqa: E731
        self.sp = spm.SentencePieceProcessor(model_file=vocab_file)
        self.special = {attr: None for attr in SPECIAL_ATTRIBUTES}
        self.special.update(bos_token=wrap(bos_token), eos_token=wrap(eos_token), unk_token=wrap(unk_token),
                            pad_token=wrap(pad_token))
        self.additional_special_tokens = list(additional_special_tokens or [])
        self.legacy = True if legacy is None else bool(legacy)
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        self.clean_up_tokenization_spaces = clean_up_tokenization_spaces
        self.added_tokens_encoder = {}
        self.added_tokens_decoder = {}
        self.unique_no_split_tokens = []

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, directory):
        config = read_json(directory, 'tokenizer_config.json') or {}
        kwargs = {}
        for key in ('add_bos_token', 'add_eos_token', 'clean_up_tokenization_spaces', 'legacy'):
            if key in config:
                kwargs[key] = config[key]
        for key in SPECIAL_ATTRIBUTES + ('additional_special_tokens',):
            if key in config:
                kwargs[key] = config_token(config[key])
        extra = {k: kwargs.pop(k) for k in ('sep_token', 'cls_token', 'mask_token') if k in kwargs}
        tokenizer = cls(os.path.join(directory, 'tokenizer.model'), **kwargs)
        for key, value in extra.items():
            tokenizer.special[key] = value

        for key, value in (read_json(directory, 'special_tokens_map.json') or {}).items():
            if key == 'additional_special_tokens':
                tokenizer.additional_special_tokens = list(map_token(value))
            elif key in tokenizer.special:
                tokenizer.special[key] = map_token(value)

        added = read_json(directory, 'added_tokens.json') or {}
        specials = set(tokenizer.all_special_tokens)
        batch, batch_special = [], None
        for token, index in sorted(added.items(), key=lambda item: item[1]):
            expected = len(tokenizer) + len(batch)
            if index != expected:
                raise ValueError(f"added_tokens.json: non-consecutive added token '{token}': "
                                 f'should have index {expected} but has index {index}')
            is_special = token in specials
            if batch and is_special != batch_special:
                tokenizer.add_tokens(batch, special_tokens=batch_special)
                batch = []
            batch.append(token)
            batch_special = is_special
        if batch:
            tokenizer.add_tokens(batch, special_tokens=batch_special)
        # sanitize_special_tokens(): every special token is a no-split token (and added if new).
        tokenizer.add_tokens(tokenizer.all_special_tokens_extended, special_tokens=True)
        return tokenizer

    def add_tokens(self, tokens, special_tokens=False):
        tokens = [str(t) for t in tokens]
        new = []
        unk = self.convert_tokens_to_ids(str(self.special['unk_token']))
        for token in tokens:
            if token != str(self.special['unk_token']) and self.convert_tokens_to_ids(token) == unk and token not in new:
                new.append(token)
        base = len(self)
        for i, token in enumerate(new):
            self.added_tokens_encoder[token] = base + i
            self.added_tokens_decoder[base + i] = token
        no_split = tokens if special_tokens else new
        self.unique_no_split_tokens = sorted(set(self.unique_no_split_tokens) | set(no_split))
        return len(new)

    # ---- special tokens ------------------------------------------------------------------

    @property
    def all_special_tokens_extended(self):
        out = []
        for attr in SPECIAL_ATTRIBUTES:
            if self.special[attr] is not None:
                out.append(self.special[attr])
        out.extend(self.additional_special_tokens)
        seen, unique = set(), []
        for token in out:  # OrderedDict.fromkeys: an AddedToken and its plain string both stay
            key = (type(token), token)
            if key not in seen:
                seen.add(key)
                unique.append(token)
        return unique

    @property
    def all_special_tokens(self):
        out = []
        for token in self.all_special_tokens_extended:
            if str(token) not in out:
                out.append(str(token))
        return out

    @property
    def all_special_ids(self):
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def _special_id(self, attr):
        token = self.special[attr]
        return None if token is None else self.convert_tokens_to_ids(str(token))

    bos_token_id = property(lambda self: self._special_id('bos_token'))
    eos_token_id = property(lambda self: self._special_id('eos_token'))
    unk_token_id = property(lambda self: self._special_id('unk_token'))
    pad_token_id = property(lambda self: self._special_id('pad_token'))

    @property
    def vocab_size(self):
        return self.sp.get_piece_size()

    def __len__(self):
        return self.vocab_size + len(self.added_tokens_encoder)

    def strip_rules(self):
        """{no-split token: (lstrip, rstrip)} as tokenize() applies them."""
        extended = {str(t): t for t in self.all_special_tokens_extended if isinstance(t, AddedToken)}
        rules = {}
        for token in self.unique_no_split_tokens:
            t = extended.get(token)
            rules[token] = (t.lstrip, t.rstrip) if t is not None else (True, True)
        return rules

    # ---- encoding ------------------------------------------------------------------------

    def _split(self, text):
        """Leftmost-longest split on the no-split tokens (what 4.31's Trie.split gives for them)."""
        tokens = sorted(self.unique_no_split_tokens, key=len, reverse=True)
        out, start, i = [], 0, 0
        while i < len(text):
            match = next((t for t in tokens if text.startswith(t, i)), None)
            if match is None:
                i += 1
                continue
            if i > start:
                out.append(text[start:i])
            out.append(match)
            i += len(match)
            start = i
        if start < len(text):
            out.append(text[start:])
        return out

    def tokenize(self, text):
        if not self.legacy:
            text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, ' ')
        no_split = set(self.unique_no_split_tokens)
        extended = {str(t): t for t in self.all_special_tokens_extended if isinstance(t, AddedToken)}
        pieces = self._split(text)
        for i, piece in enumerate(pieces):
            if piece not in no_split:
                continue
            token = extended.get(piece)
            left = pieces[i - 1] if i > 0 else None
            right = pieces[i + 1] if i < len(pieces) - 1 else None
            lstrip, rstrip = (token.lstrip, token.rstrip) if token is not None else (True, True)
            if rstrip and right:
                pieces[i + 1] = right.lstrip()
            if lstrip and left:
                pieces[i - 1] = left.rstrip()
        out = []
        for piece in pieces:
            if not piece:
                continue
            out.extend([piece] if piece in no_split else self._tokenize(piece))
        return out

    def _tokenize(self, text):
        is_first = False
        if not self.legacy:
            is_first = text.startswith(SPIECE_UNDERLINE)
            if is_first:
                text = text[1:]
        tokens = self.sp.encode(text, out_type=str)
        if not self.legacy and not is_first and not text.startswith(' ') and tokens and tokens[0].startswith(SPIECE_UNDERLINE):
            tokens = ([tokens[0][1:]] if len(tokens[0]) > 1 else []) + tokens[1:]
        return tokens

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self.added_tokens_encoder.get(tokens, self.sp.piece_to_id(tokens))
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def build_inputs_with_special_tokens(self, ids):
        return ([self.bos_token_id] if self.add_bos_token else []) + ids + ([self.eos_token_id] if self.add_eos_token else [])

    def encode(self, text, add_special_tokens=True):
        ids = self.convert_tokens_to_ids(self.tokenize(text))
        return self.build_inputs_with_special_tokens(ids) if add_special_tokens else ids

    def __call__(self, text, add_special_tokens=True):
        ids = self.encode(text, add_special_tokens)
        return Encoding(input_ids=ids, attention_mask=[1] * len(ids))

    # ---- decoding ------------------------------------------------------------------------

    def convert_ids_to_tokens(self, ids, skip_special_tokens=False):
        special = set(self.all_special_ids)
        out = []
        for i in ids:
            i = int(i)
            if skip_special_tokens and i in special:
                continue
            out.append(self.added_tokens_decoder[i] if i in self.added_tokens_decoder else self.sp.id_to_piece(i))
        return out

    def convert_tokens_to_string(self, tokens):
        """LlamaTokenizer's: special tokens are not given to sentencepiece (and get a space before)."""
        specials = set(self.all_special_tokens)
        out, run, prev_is_special = '', [], False
        for i, token in enumerate(tokens):
            if token in specials:
                if not prev_is_special and i != 0:
                    out += ' '
                out += self.sp.decode(run) + token
                prev_is_special, run = True, []
            else:
                run.append(token)
                prev_is_special = False
        return out + self.sp.decode(run)

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=None,
               spaces_between_special_tokens=True):
        """4.31's slow decode: runs of ordinary tokens go through sentencepiece (each run loses
        one leading "▁"), added tokens stay as their text, and the pieces are joined with " "
        (so `is [SEG].` comes back as `is [SEG] .`). The engine's LisaTokenizer.decode equals
        `decode(ids, skip_special_tokens=True)`: use that for an answer's text and history."""
        sub_texts, run = [], []
        for token in self.convert_ids_to_tokens(ids, skip_special_tokens):
            if token in self.added_tokens_encoder:
                if run:
                    sub_texts.append(self.convert_tokens_to_string(run))
                    run = []
                sub_texts.append(token)
            else:
                run.append(token)
        if run:
            sub_texts.append(self.convert_tokens_to_string(run))
        text = (' ' if spaces_between_special_tokens else '').join(sub_texts)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text


def clean_up_tokenization(text):
    for a, b in ((' .', '.'), (' ?', '?'), (' !', '!'), (' ,', ','), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text
