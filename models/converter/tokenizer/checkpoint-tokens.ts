/**
 * The added and special tokens of a LISA checkpoint, with the flags that
 * transformers 4.31's slow LlamaTokenizer gives them when it loads
 * tokenizer_config.json, special_tokens_map.json and added_tokens.json
 * (models/reference/llama_tokenizer.py is the same rules in Python):
 *
 * - tokenizer_config.json: add_bos_token (true), add_eos_token (false),
 *   clean_up_tokenization_spaces (false), legacy (absent = true), special
 *   tokens as strings or `{"__type": "AddedToken", ...}`;
 * - LlamaTokenizer turns bos/eos/unk/pad strings into AddedTokens that strip
 *   nothing; special_tokens_map.json then overrides them, a dict becoming an
 *   AddedToken and a string staying a string;
 * - added_tokens.json: ids follow the sentencepiece vocabulary without gaps;
 * - every added token and every special token's text is matched whole in the
 *   text; an AddedToken strips whitespace per its lstrip/rstrip, anything else
 *   (the added tokens: <im_start>, [SEG]...) strips it on both sides.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { UserInputError } from '../../../src/errors.js';

export interface TokenRule {
  content: string;
  id: number;
  lstrip: boolean;
  rstrip: boolean;
  /** One of 4.31's all_special_tokens: dropped by decode(skip_special_tokens). */
  special: boolean;
  /** In added_tokens_encoder: decoded as its own text, not by sentencepiece. */
  added: boolean;
}

export interface CheckpointTokens {
  addBos: boolean;
  addEos: boolean;
  cleanUp: boolean;
  bos?: string;
  eos?: string;
  unk?: string;
  pad?: string;
  /** Every token matched whole in the text, by id. */
  rules: TokenRule[];
  /** Sentencepiece pieces plus added tokens. */
  size: number;
}

interface AddedTokenValue {
  content: string;
  lstrip: boolean;
  rstrip: boolean;
}
type SpecialValue = string | AddedTokenValue | null;

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;
type SpecialKey = (typeof SPECIAL_KEYS)[number];

function invalid(file: string, why: string): UserInputError {
  return new UserInputError(`${file} ${why}`, 'checkpoint_invalid');
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalid(file, `cannot be read: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(file, `is not valid JSON: ${(error as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid(file, 'is not a JSON object.');
  return value as Record<string, unknown>;
}

function addedToken(file: string, key: string, value: Record<string, unknown>): AddedTokenValue {
  if (typeof value.content !== 'string' || value.content === '') throw invalid(file, `has a "${key}" without its content.`);
  return { content: value.content, lstrip: value.lstrip === true, rstrip: value.rstrip === true };
}

/** `fromConfig`: tokenizer_config.json, where only `__type: AddedToken` dicts are tokens (4.31 fails on others). */
function specialValue(file: string, key: string, value: unknown, fromConfig: boolean): SpecialValue {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && !Array.isArray(value)) {
    const dict = value as Record<string, unknown>;
    if (fromConfig && dict.__type !== 'AddedToken') throw invalid(file, `has "${key}" as an object without "__type": "AddedToken"; transformers 4.31 cannot load it.`);
    return addedToken(file, key, dict);
  }
  throw invalid(file, `has "${key}" that is neither a string nor a token object.`);
}

function specialList(file: string, value: unknown, fromConfig: boolean): SpecialValue[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(file, 'has "additional_special_tokens" that is not a list.');
  return value.map((v) => specialValue(file, 'additional_special_tokens', v, fromConfig)).filter((v) => v !== null);
}

function flag(file: string, config: Record<string, unknown>, key: string, fallback: boolean): boolean {
  const value = config[key];
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(file, `has "${key}": ${JSON.stringify(value)}; expected true or false.`);
  return value;
}

const text = (value: SpecialValue): string | undefined => (value === null ? undefined : typeof value === 'string' ? value : value.content);

export interface PieceLookup {
  count: number;
  unkId: number;
  /** The sentencepiece id of a piece, or undefined. */
  id(text: string): number | undefined;
}

/** The rules 4.31 applies to every whole-matched token of the checkpoint in `dir`. */
export async function readCheckpointTokens(dir: string, pieces: PieceLookup): Promise<CheckpointTokens> {
  const pieceCount = pieces.count;
  const pieceId = (content: string) => pieces.id(content);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const mapFile = path.join(dir, 'special_tokens_map.json');
  const addedFile = path.join(dir, 'added_tokens.json');
  const config = (await readJson(configFile)) ?? {};

  if (config.legacy === false) {
    throw invalid(
      configFile,
      'sets "legacy": false; transformers 4.31\'s non-legacy LlamaTokenizer (which drops the "▁" after added tokens, sometimes into <unk>) has no tokenizer.json equivalent, so this checkpoint cannot be converted faithfully.',
    );
  }
  const specials: Record<SpecialKey, SpecialValue> = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', sep_token: null, pad_token: null, cls_token: null, mask_token: null };
  for (const key of SPECIAL_KEYS) if (key in config) specials[key] = specialValue(configFile, key, config[key], true);
  let additional = specialList(configFile, config.additional_special_tokens, true);
  // LlamaTokenizer.__init__: bos/eos/unk/pad given as strings strip nothing.
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token'] as const) {
    const value = specials[key];
    if (typeof value === 'string') specials[key] = { content: value, lstrip: false, rstrip: false };
  }
  const map = (await readJson(mapFile)) ?? {};
  for (const [key, value] of Object.entries(map)) {
    if (key === 'additional_special_tokens') additional = specialList(mapFile, value, false);
    else if ((SPECIAL_KEYS as readonly string[]).includes(key)) specials[key as SpecialKey] = specialValue(mapFile, key, value, false);
  }

  const extended = [...SPECIAL_KEYS.map((k) => specials[k]), ...additional].filter((v): v is string | AddedTokenValue => v !== null);
  const specialTexts = [...new Set(extended.map((v) => text(v)!))];
  // 4.31 keeps, per text, the last AddedToken among the special tokens; texts without one strip both sides.
  const stripOf = new Map<string, AddedTokenValue>();
  for (const v of extended) if (typeof v !== 'string') stripOf.set(v.content, v);

  const ids = new Map<string, number>();
  const added = new Set<string>();
  const addedJson = (await readJson(addedFile)) ?? {};
  const entries = Object.entries(addedJson).map(([token, id]) => {
    if (typeof id !== 'number' || !Number.isInteger(id)) throw invalid(addedFile, `gives "${token}" the id ${JSON.stringify(id)}; ids are integers.`);
    return [token, id] as const;
  });
  entries.sort((a, b) => a[1] - b[1]);
  for (const [token, id] of entries) {
    const expected = pieceCount + added.size;
    const existing = pieceId(token);
    if (existing !== undefined) throw invalid(addedFile, `adds "${token}" (id ${id}), but tokenizer.model already has it as piece ${existing}.`);
    if (id !== expected) throw invalid(addedFile, `gives "${token}" the id ${id}; transformers 4.31 needs the next free id, ${expected}.`);
    ids.set(token, id);
    added.add(token);
  }
  // sanitize_special_tokens(): a special token that is not in the vocabulary yet gets the next id.
  const unk = text(specials.unk_token);
  for (const content of specialTexts) {
    if (ids.has(content)) continue;
    // The unknown token's text is never added: looked up in sentencepiece it is the unknown id anyway.
    const id = pieceId(content) ?? (content === unk ? pieces.unkId : pieceCount + added.size);
    if (id >= pieceCount) added.add(content);
    ids.set(content, id);
  }

  const rules: TokenRule[] = [...ids].map(([content, id]) => {
    const strip = stripOf.get(content);
    return { content, id, lstrip: strip ? strip.lstrip : true, rstrip: strip ? strip.rstrip : true, special: specialTexts.includes(content), added: added.has(content) };
  });
  rules.sort((a, b) => a.id - b.id);

  const tokens: CheckpointTokens = {
    addBos: flag(configFile, config, 'add_bos_token', true),
    addEos: flag(configFile, config, 'add_eos_token', false),
    cleanUp: flag(configFile, config, 'clean_up_tokenization_spaces', false),
    bos: text(specials.bos_token),
    eos: text(specials.eos_token),
    unk,
    pad: text(specials.pad_token),
    rules,
    size: pieceCount + added.size,
  };
  if (tokens.addBos && tokens.bos === undefined) throw invalid(configFile, 'adds a BOS token but names none.');
  if (tokens.addEos && tokens.eos === undefined) throw invalid(configFile, 'adds an EOS token but names none.');
  return tokens;
}
