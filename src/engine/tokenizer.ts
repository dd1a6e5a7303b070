import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { UserInputError } from '../errors.js';
import type { PackManifest } from './manifest.js';
import type { PromptPart } from './prompt.js';

/**
 * A prompt as token ids, with the image rows as one block. `ids` holds
 * IMAGE_SLOT where the image's feature rows go (one slot stands for all
 * `imageTokens` rows), as the reference's IMAGE_TOKEN_INDEX does.
 */
export const IMAGE_SLOT = -200;

interface TokenizerFiles {
  tokenizer: Record<string, unknown> & { added_tokens?: { content: string }[] };
  config: Record<string, unknown>;
}

/** The pack's tokenizer, with the reference's image-splice and BOS rules. */
export class LisaTokenizer {
  readonly segId: number;
  readonly eosId: number;
  readonly bosId: number | undefined;
  /** Text of every added/special token: user text containing one needs care. */
  private readonly specialStrings: string[];
  private readonly imageTokens: number;

  private constructor(
    private readonly full: Tokenizer,
    /** The same tokenizer without added tokens: users' text can never become one. */
    private readonly plain: Tokenizer,
    manifest: PackManifest,
    specialStrings: string[],
    private readonly file: string,
  ) {
    // Lowercased: a tokenizer may match added tokens after normalising (e.g. lowercasing) the text.
    this.specialStrings = specialStrings.map((s) => s.toLowerCase());
    this.imageTokens = manifest.imageTokens;
    this.segId = this.requireId(manifest.tokens.seg);
    this.requireId(manifest.tokens.imageStart);
    this.requireId(manifest.tokens.imageEnd);
    this.eosId = this.requireId(manifest.tokens.eos);
    const empty = full.encode('', { add_special_tokens: true }).ids;
    this.bosId = empty.length > 0 ? empty[0] : undefined;
  }

  static async load(packDir: string, manifest: PackManifest): Promise<LisaTokenizer> {
    const file = path.join(packDir, manifest.tokenizer);
    const files = await readTokenizerFiles(file, path.join(packDir, 'tokenizer_config.json'));
    const strings = (files.tokenizer.added_tokens ?? []).map((t) => t.content);
    try {
      const full = new Tokenizer(files.tokenizer, files.config);
      const plain = new Tokenizer({ ...files.tokenizer, added_tokens: [] }, files.config);
      return new LisaTokenizer(full, plain, manifest, strings, file);
    } catch (error) {
      if (error instanceof UserInputError) throw error;
      throw new UserInputError(`Model pack tokenizer ${file} cannot be loaded: ${(error as Error).message}`, 'model_pack_invalid');
    }
  }

  /** Decoder positions a prompt's ids take: one each, and `imageTokens` rows for the image slot. */
  positions(ids: readonly number[]): number {
    return ids.reduce((n, id) => n + (id === IMAGE_SLOT ? this.imageTokens : 1), 0);
  }

  private requireId(token: string): number {
    const id = this.full.token_to_id(token);
    if (id === undefined) {
      throw new UserInputError(`Model pack tokenizer ${this.file} has no token "${token}" (named in lisa.json).`, 'model_pack_invalid');
    }
    return id;
  }

  /**
   * Token ids of a prompt, like the reference's `tokenizer_image_token`: split
   * at the image, tokenise each chunk with special tokens, keep the BOS of the
   * first chunk only, and put IMAGE_SLOT between the chunks.
   */
  encodePrompt(parts: readonly PromptPart[]): number[] {
    const chunks: PromptPart[][] = [[]];
    for (const part of parts) {
      if (part.kind === 'image') chunks.push([]);
      else chunks[chunks.length - 1]!.push(part);
    }
    const ids: number[] = [];
    chunks.forEach((chunk, i) => {
      let chunkIds = this.encodeChunk(chunk);
      if (i > 0) {
        ids.push(IMAGE_SLOT);
        if (this.bosId !== undefined && chunkIds[0] === this.bosId) chunkIds = chunkIds.slice(1);
      }
      ids.push(...chunkIds);
    });
    return ids;
  }

  /**
   * One chunk, with BOS. When no user text holds a special token's text the
   * chunk is tokenised whole, exactly as the reference does. Otherwise the user
   * text is tokenised on its own without added tokens, so `[SEG]` or `</s>`
   * typed by a person stays plain text and the template around it keeps its ids.
   */
  private encodeChunk(chunk: readonly PromptPart[]): number[] {
    const injected = chunk.some((p) => p.kind === 'user' && this.specialStrings.some((s) => p.text.toLowerCase().includes(s)));
    if (!injected) {
      return this.full.encode(chunk.map((p) => (p.kind === 'image' ? '' : p.text)).join(''), { add_special_tokens: true }).ids;
    }
    const ids: number[] = this.bosId === undefined ? [] : [this.bosId];
    for (const part of chunk) {
      if (part.kind === 'image' || part.text === '') continue;
      const tokenizer = part.kind === 'user' ? this.plain : this.full;
      ids.push(...tokenizer.encode(part.text, { add_special_tokens: false }).ids);
    }
    return ids;
  }

  /** The answer text; `[SEG]` stays in place as its token text. */
  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    return this.full.decode([...ids], { skip_special_tokens: true });
  }
}

async function readTokenizerFiles(tokenizerFile: string, configFile: string): Promise<TokenizerFiles> {
  let tokenizer: TokenizerFiles['tokenizer'];
  try {
    tokenizer = JSON.parse(await readFile(tokenizerFile, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'is missing' : `cannot be read: ${(error as Error).message}`;
    throw new UserInputError(`Model pack tokenizer ${tokenizerFile} ${reason}.`, 'model_pack_invalid');
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(await readFile(configFile, 'utf8'));
  } catch (error) {
    // tokenizer_config.json is optional (the toy pack has none); a broken one is not.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new UserInputError(`Model pack file ${configFile} cannot be read: ${(error as Error).message}`, 'model_pack_invalid');
    }
  }
  return { tokenizer, config };
}
