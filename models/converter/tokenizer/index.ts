/**
 * A pack's tokenizer.json and tokenizer_config.json from a LISA checkpoint's
 * tokenizer.model, added_tokens.json, special_tokens_map.json and
 * tokenizer_config.json, giving the engine the ids of the reference's
 * transformers-4.31 slow LlamaTokenizer (test/llama-tokenizer.test.ts proves
 * it against models/reference/llama_tokenizer.py).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../../../src/errors.js';
import { PACK_FILES } from '../../generator/pack-files.js';
import { type TokenRule, readCheckpointTokens } from './checkpoint-tokens.js';
import { readSentencePieceModel } from './sentencepiece.js';
import { llamaTokenizerJson } from './tokenizer-json.js';

/** The texts lisa.json names (the engine looks their ids up in tokenizer.json). */
export const LISA_TOKENS = { seg: '[SEG]', imageStart: '<im_start>', imageEnd: '<im_end>' } as const;

export interface PackTokenizer {
  /** The files written. */
  tokenizerJson: string;
  tokenizerConfig: string;
  /** Sentencepiece pieces plus added tokens: the rows the embedding needs. */
  vocabSize: number;
  /** Pieces of tokenizer.model alone (added tokens start here). */
  pieces: number;
  /** For lisa.json's `tokens`. */
  tokens: { seg: string; imageStart: string; imageEnd: string; eos: string };
  ids: { seg: number; imageStart: number; imageEnd: number; eos: number; bos: number | null; unk: number };
  /** Every token matched whole in text, with its id and 4.31 flags (added_tokens.json's and the specials). */
  added: TokenRule[];
}

/**
 * Writes `outDir/tokenizer.json` and `outDir/tokenizer_config.json`.
 * `embeddingRows` (config.json's vocab_size): every token id must have a row.
 */
export async function writePackTokenizer(checkpointDir: string, outDir: string, embeddingRows?: number): Promise<PackTokenizer> {
  const modelFile = path.join(checkpointDir, 'tokenizer.model');
  const addedFile = path.join(checkpointDir, 'added_tokens.json');
  const sp = await readSentencePieceModel(modelFile);
  const pieceIds = new Map(sp.pieces.map((p, id) => [p.piece, id] as const));
  const tokens = await readCheckpointTokens(checkpointDir, { count: sp.pieces.length, unkId: sp.unkId, id: (t) => pieceIds.get(t) });

  const idOf = (content: string, file: string): number => {
    const rule = tokens.rules.find((r) => r.content === content);
    if (!rule) throw new UserInputError(`${file} has no "${content}" token; LISA's prompt needs it.`, 'checkpoint_invalid');
    return rule.id;
  };
  const eos = tokens.eos ?? '</s>';
  const ids = {
    seg: idOf(LISA_TOKENS.seg, addedFile),
    imageStart: idOf(LISA_TOKENS.imageStart, addedFile),
    imageEnd: idOf(LISA_TOKENS.imageEnd, addedFile),
    eos: idOf(eos, path.join(checkpointDir, 'special_tokens_map.json')),
    bos: tokens.bos === undefined ? null : (pieceIds.get(tokens.bos) ?? idOf(tokens.bos, path.join(checkpointDir, 'special_tokens_map.json'))),
    unk: sp.unkId,
  };
  if (embeddingRows !== undefined && tokens.size > embeddingRows) {
    throw new UserInputError(
      `${addedFile} and ${modelFile} make ${tokens.size} tokens, but config.json's vocab_size is ${embeddingRows}: the checkpoint's tokenizer does not match its embeddings.`,
      'checkpoint_invalid',
    );
  }

  const tokenizerJson = path.join(outDir, PACK_FILES.tokenizer);
  const tokenizerConfig = path.join(outDir, 'tokenizer_config.json');
  await writeFile(tokenizerJson, `${JSON.stringify(llamaTokenizerJson(sp, tokens))}\n`);
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: tokens.bos ?? null,
    eos_token: tokens.eos ?? null,
    unk_token: tokens.unk ?? null,
    pad_token: tokens.pad ?? null,
    add_bos_token: tokens.addBos,
    add_eos_token: tokens.addEos,
    // The JS library cleans up by default; 4.31's LlamaTokenizer does not, unless the checkpoint says so.
    clean_up_tokenization_spaces: tokens.cleanUp,
  };
  await writeFile(tokenizerConfig, `${JSON.stringify(config, null, 2)}\n`);

  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: tokens.size,
    pieces: sp.pieces.length,
    tokens: { ...LISA_TOKENS, eos },
    ids,
    added: tokens.rules,
  };
}
