/** The engine's public types: what every caller of LISA sees. */

import type { PackManifest } from './manifest.js';

/** An 8-bit RGB image, row-major, 3 bytes per pixel, EXIF orientation applied. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
  /**
   * CLIP's pixel values for this image, when they were made beside the decode
   * (see tasks.ts), with the settings they were made with and what they took.
   */
  clip?: { settings: PackManifest['clip']; values: Float32Array; ms: number };
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
  /** The encoded image file (JPEG, PNG, WebP, GIF, TIFF, AVIF). */
  image: Uint8Array;
  /** sha256 hex of `image`, when the caller already knows it (saves hashing). */
  imageHash?: string;
  /** `image` already decoded by the caller (who needs the pixels for the overlay anyway). */
  decoded?: DecodedImage;
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

export type StageName = keyof StageTimings;

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
