"""Batch access to LlamaTokenizer431 for tests and tools, and LLaVA's tokenizer_image_token.

`python3 llama_tokenizer_cli.py CHECKPOINT_DIR < requests.json` prints a JSON list with one
answer per request:
- {"encode": text, "special": true}  -> ids (special: add BOS as `tokenizer(text)` does)
- {"image_prompt": text}             -> ids of a prompt with <image> (-200 where it stands)
- {"decode": ids, "skip_special": b} -> text, as 4.31's `decode(ids, skip_special_tokens=b)`
- {"sp": text}                       -> ids of text given to sentencepiece alone (no added tokens)
"""
import json
import sys

from llama_tokenizer import LlamaTokenizer431


def tokenizer_image_token(prompt, tokenizer, image_token_index=-200, image_token='<image>'):
    """LLaVA's mm_utils.tokenizer_image_token: chunks around <image>, the first chunk's BOS kept once."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split(image_token)]
    ids, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    # LLaVA slices every chunk and every separator ([image] * (offset + 1)) by `offset`.
    for i, chunk in enumerate(chunks):
        if i > 0:
            ids.extend(([image_token_index] * (offset + 1))[offset:])
        ids.extend(chunk[offset:])
    return ids


def main():
    tokenizer = LlamaTokenizer431.from_pretrained(sys.argv[1])
    out = []
    for request in json.load(sys.stdin):
        if 'encode' in request:
            out.append(tokenizer.encode(request['encode'], request.get('special', True)))
        elif 'image_prompt' in request:
            out.append(tokenizer_image_token(request['image_prompt'], tokenizer))
        elif 'decode' in request:
            out.append(tokenizer.decode(request['decode'], skip_special_tokens=request.get('skip_special', False)))
        elif 'sp' in request:
            out.append(tokenizer.convert_tokens_to_ids(tokenizer._tokenize(request['sp'])) if request['sp'] else [])
        else:
            raise ValueError(f'unknown request {request}')
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == '__main__':
    main()
