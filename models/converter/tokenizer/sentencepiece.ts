/**
 * Reads a sentencepiece `tokenizer.model` (a protobuf `ModelProto`) and
 * refuses what a Hugging Face tokenizer.json run by @huggingface/tokenizers
 * cannot reproduce id for id: only LLaMA's kind converts — BPE with byte
 * fallback, the identity normaliser, the dummy `▁` prefix, no whitespace
 * collapsing, and no user-defined or unused pieces (sentencepiece matches the
 * former before BPE and re-splits the latter after it).
 */
import { readFile } from 'node:fs/promises';
import protobuf from 'protobufjs';
import { UserInputError } from '../../../src/errors.js';

export type PieceType = 'NORMAL' | 'UNKNOWN' | 'CONTROL' | 'USER_DEFINED' | 'UNUSED' | 'BYTE';

export interface SentencePiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  file: string;
  pieces: SentencePiece[];
  unkId: number;
}

// Only the fields the checks and the conversion read; field numbers and
// proto2 defaults as in sentencepiece's sentencepiece_model.proto.
const schema = protobuf.Root.fromJSON({
  nested: {
    ModelProto: {
      fields: {
        pieces: { rule: 'repeated', type: 'SentencePiece', id: 1 },
        trainerSpec: { type: 'TrainerSpec', id: 2 },
        normalizerSpec: { type: 'NormalizerSpec', id: 3 },
        denormalizerSpec: { type: 'NormalizerSpec', id: 5 },
      },
      nested: {
        SentencePiece: {
          fields: {
            piece: { type: 'string', id: 1 },
            score: { type: 'float', id: 2 },
            type: { type: 'Type', id: 3, options: { default: 'NORMAL' } },
          },
          nested: { Type: { values: { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } } },
        },
      },
    },
    TrainerSpec: {
      fields: {
        modelType: { type: 'ModelType', id: 3, options: { default: 'UNIGRAM' } },
        treatWhitespaceAsSuffix: { type: 'bool', id: 24, options: { default: false } },
        byteFallback: { type: 'bool', id: 35, options: { default: false } },
      },
      nested: { ModelType: { values: { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } } },
    },
    NormalizerSpec: {
      fields: {
        name: { type: 'string', id: 1 },
        precompiledCharsmap: { type: 'bytes', id: 2 },
        addDummyPrefix: { type: 'bool', id: 3, options: { default: true } },
        removeExtraWhitespaces: { type: 'bool', id: 4, options: { default: true } },
        escapeWhitespaces: { type: 'bool', id: 5, options: { default: true } },
        normalizationRuleTsv: { type: 'string', id: 6 },
      },
    },
  },
});
const ModelProto = schema.lookupType('ModelProto');

interface NormalizerSpec {
  name?: string;
  precompiledCharsmap?: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
  normalizationRuleTsv?: string;
}

interface DecodedModel {
  pieces?: SentencePiece[];
  trainerSpec?: { modelType: string; treatWhitespaceAsSuffix: boolean; byteFallback: boolean };
  normalizerSpec?: NormalizerSpec;
  denormalizerSpec?: NormalizerSpec;
}

export async function readSentencePieceModel(file: string): Promise<SentencePieceModel> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new UserInputError(
      missing ? `${file} is missing: the checkpoint's sentencepiece tokenizer is needed.` : `${file} cannot be read: ${(error as Error).message}`,
      missing ? 'checkpoint_missing' : 'checkpoint_invalid',
    );
  }
  return parseSentencePieceModel(file, bytes);
}

export function parseSentencePieceModel(file: string, bytes: Uint8Array): SentencePieceModel {
  const refuse = (why: string) => new UserInputError(`${file} ${why}`, 'checkpoint_invalid');
  let model: DecodedModel;
  try {
    model = ModelProto.toObject(ModelProto.decode(bytes), { enums: String, defaults: true }) as DecodedModel;
  } catch (error) {
    throw refuse(`is not a sentencepiece model: ${(error as Error).message}.`);
  }
  const pieces = model.pieces ?? [];
  const trainer = model.trainerSpec;
  const normalizer = model.normalizerSpec;
  if (pieces.length === 0 || !trainer || !normalizer) throw refuse('is not a sentencepiece model (no pieces, trainer or normaliser spec).');

  if (trainer.modelType !== 'BPE') throw refuse(`is a sentencepiece ${trainer.modelType} model; only BPE models (LLaMA's) convert.`);
  if (!trainer.byteFallback) throw refuse('has no byte fallback; only LLaMA-style models with byte_fallback convert.');
  if (trainer.treatWhitespaceAsSuffix) throw refuse('puts "▁" after words (treat_whitespace_as_suffix); only the LLaMA prefix convention converts.');
  const name = normalizer.name || 'identity';
  if (name !== 'identity' || (normalizer.precompiledCharsmap?.length ?? 0) > 0 || normalizer.normalizationRuleTsv) {
    throw refuse(`uses the "${name}" normaliser; only the identity normaliser (LLaMA's) converts.`);
  }
  if (!normalizer.addDummyPrefix) throw refuse('adds no "▁" before the text (add_dummy_prefix false); only LLaMA-style models convert.');
  if (normalizer.removeExtraWhitespaces) throw refuse('collapses whitespace (remove_extra_whitespaces); only models that keep it (LLaMA) convert.');
  if (!normalizer.escapeWhitespaces) throw refuse('does not turn spaces into "▁" (escape_whitespaces false); it cannot be converted.');
  if ((model.denormalizerSpec?.precompiledCharsmap?.length ?? 0) > 0) throw refuse('has a denormaliser; it cannot be converted.');

  const seen = new Set<string>();
  pieces.forEach((p, id) => {
    if (p.type === 'USER_DEFINED' || p.type === 'UNUSED') {
      throw refuse(`has a ${p.type.toLowerCase().replace('_', '-')} piece ${JSON.stringify(p.piece)} (id ${id}); only plain BPE vocabularies convert.`);
    }
    if (seen.has(p.piece)) throw refuse(`has the piece ${JSON.stringify(p.piece)} twice.`);
    seen.add(p.piece);
  });
  for (let byte = 0; byte < 256; byte++) {
    const text = byteToken(byte);
    if (!pieces.some((p) => p.type === 'BYTE' && p.piece === text)) throw refuse(`has byte_fallback but no byte piece ${text}.`);
  }
  const unkId = pieces.findIndex((p) => p.type === 'UNKNOWN');
  if (unkId < 0) throw refuse('has no unknown piece.');
  return { file, pieces, unkId };
}

export function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}
