/**
 * The engine's port and public types: what every caller of LISA sees. The
 * boundary is one way: a request names its image by hash, the engine reads
 * the bytes from the ImageSource it was made with and owns everything from
 * there (decoding, preprocessing, its caches). Requests and results are plain
 * data, so the same call works in this thread, on the engine thread, or on a
 * worker elsewhere.
 */

import type { PackManifest } from './manifest.js';
import type { ProviderName } from './providers.js';

/** An 8-bit RGB image, row-major, 3 bytes per pixel, EXIF orientation applied. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Encoded image files by sha256 hex, given to an engine when it is made (the conversation store's images, in lisa-bot serve). */
export interface ImageSource {
  /** The file's bytes, or undefined when it is unknown or expired. */
  get(hash: string): Promise<Uint8Array | undefined>;
}

/** A binary mask at the original image size: `data[y * width + x]` is 0 or 1. */
export interface BinaryMask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A COCO-style run-length encoding (column-major, compressed `counts` string). */
export interface RleMask {
  size: [height: number, width: number];
  counts: string;
}

/** [x, y, width, height] in pixels of the original image. */
export type BoundingBox = [number, number, number, number];

/** One `[SEG]`'s mask at the original image size; `decodeRle(rle)` gives its pixels. */
export interface Segment {
  /** The mask, run-length encoded: what is stored, sent and drawn. */
  rle: RleMask;
  bbox: BoundingBox;
  area: number;
  /** The mask decoder's predicted IoU for this mask. */
  score: number;
}

/** One exchange of a conversation; the last turn of a request has no answer yet. */
export interface ChatTurn {
  user: string;
  assistant?: string;
}

export interface ChatRequest {
  /** sha256 hex of the encoded image file (JPEG, PNG, WebP, GIF, TIFF, AVIF), read from the engine's ImageSource when needed. */
  imageHash: string;
  /** Oldest first; every turn but the last carries its answer. */
  turns: ChatTurn[];
  /**
   * Teacher forcing (how LISA's validation scores a model): this answer to the
   * last turn is read, not generated. The decoder runs once over the prompt and
   * this answer, and each `[SEG]` in it gets its mask by the same offset rule.
   */
  answer?: string;
  signal?: AbortSignal;
}

/** Milliseconds spent in each stage of one `chat` call. */
export interface StageTimings {
  imageDecode: number;
  clipPreprocess: number;
  samPreprocess: number;
  visionEncoder: number;
  prefill: number;
  /** All single-token decoder steps, summed. */
  decodeSteps: number;
  segProjection: number;
  samEncoder: number;
  maskDecoder: number;
  postprocess: number;
  total: number;
}

export interface ChatResult {
  /** The decoded answer; every `[SEG]` token appears as the pack's seg token text. */
  text: string;
  /** The generated token ids, the stopping EOS excluded: what parity checks compare. */
  ids: number[];
  /** One per `[SEG]`, in order of appearance. */
  segments: Segment[];
  timings: StageTimings;
  /**
   * Prompt positions, tokens generated, prompt positions whose KV came from the
   * cache, and decoder runs after the prefill (fewer than the tokens generated
   * when prompt-lookup drafts were accepted).
   */
  tokens: { prompt: number; generated: number; reusedFromCache: number; decodeRuns: number };
  cache: { imageEmbeddings: 'hit' | 'miss' };
  /** Every graph run of this chat, in ms from its start (runs may overlap): what graph time really was. */
  graphRuns: GraphRun[];
}

export interface GraphRun {
  graph: string;
  startMs: number;
  endMs: number;
}

export interface EngineStats {
  imageCache: { entries: number; bytes: number; hits: number; misses: number };
  kvCache: { entries: number; bytes: number; hits: number; misses: number };
}

/** What the rest of lisa-bot needs of an engine, wherever it runs (Engine in this thread, EngineThread on its own). */
export interface ChatEngine {
  readonly manifest: PackManifest;
  readonly provider: ProviderName;
  chat(request: ChatRequest): Promise<ChatResult>;
  /** Prompt length in decoder positions (image rows included). */
  countPromptTokens(turns: readonly ChatTurn[]): number;
  /** As of the last finished chat. */
  stats(): EngineStats;
  close(): Promise<void>;
}
