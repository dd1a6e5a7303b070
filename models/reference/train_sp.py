"""Trains a tiny sentencepiece model with LLaMA's tokenizer.model settings, for test fixtures.

LLaMA's trainer_spec / normalizer_spec (read from its tokenizer.model): BPE, byte_fallback,
split_digits, allow_whitespace_only_pieces, character_coverage 0.99995, identity normaliser
with the dummy prefix and without whitespace collapsing, unk 0 / bos 1 / eos 2, no pad.
One thread and no shuffling, so the same corpus always gives the same model.

`python3 train_sp.py OUT_PREFIX VOCAB_SIZE < corpus.txt` does the same from the command line.
"""
import sys

import sentencepiece as spm

LLAMA_SETTINGS = dict(
    model_type='bpe',
    character_coverage=0.99995,
    split_digits=True,
    split_by_unicode_script=True,
    split_by_whitespace=True,
    split_by_number=True,
    allow_whitespace_only_pieces=True,
    byte_fallback=True,
    max_sentencepiece_length=16,
    normalization_rule_name='identity',
    add_dummy_prefix=True,
    remove_extra_whitespaces=False,
    treat_whitespace_as_suffix=False,
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    unk_piece='<unk>', bos_piece='<s>', eos_piece='</s>',
    vocabulary_output_piece_score=True,
    hard_vocab_limit=True,
    num_threads=1,
    shuffle_input_sentence=False,
    input_sentence_size=0,
    minloglevel=2,
)


def train_llama_like_sp(corpus_lines, vocab_size, out_prefix, **overrides):
    """Writes OUT_PREFIX.model (and .vocab) and returns the .model path.

    corpus_lines: sentences without newlines (a "\\n" inside one would become a piece, while
    LLaMA spells it as the byte token <0x0A>). overrides: any trainer option, e.g. to make a
    model the converter must refuse (model_type='unigram', normalization_rule_name='nmt_nfkc').
    """
    lines = [line for line in corpus_lines if line]
    if any('\n' in line for line in lines):
        raise ValueError('corpus lines must not contain newlines')
    settings = {**LLAMA_SETTINGS, **overrides}
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=out_prefix,
                                   vocab_size=vocab_size, **settings)
    return out_prefix + '.model'


if __name__ == '__main__':
    print(train_llama_like_sp(sys.stdin.read().split('\n'), int(sys.argv[2]), sys.argv[1]))
