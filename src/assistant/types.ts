/**
 * The assistant's public types: what every surface (web, Discord, Slack, CLI)
 * hands in and gets back. Platform-neutral on purpose: no SDK type appears here.
 */
import type { Segment, StageTimings } from '../engine/types.js';
import type { OverlayFormat } from '../render/formats.js';
import type { SegmentColour } from '../render/palette.js';

/** A surface's name: an entry of the registry (adapters/index.ts), or 'cli' for `lisa-bot ask --session`. */
export type Surface = string;

/** Where an image comes from. Downloads are checked and capped by the assistant. */
export type ImageRef =
  | {
      kind: 'url';
      url: string;
      /** Sent only to `allowedHosts` (e.g. Slack's bot token): never anywhere else, redirects included. */
      headers?: Record<string, string>;
      /** Exact host names the URL (and any redirect) may point at. */
      allowedHosts: readonly string[];
      /** What the platform says about the file, checked before downloading. */
      declared?: { size?: number; contentType?: string; width?: number; height?: number; name?: string };
      /** Appended to a "this is not an image" message (e.g. Slack: "the app may be missing the files:read scope"). */
      notImageHint?: string;
    }
  | { kind: 'bytes'; data: Uint8Array; name?: string };

export interface IncomingTurn {
  surface: Surface;
  /** Surface + place + thread: the surface's conversation.ts, through src/conversation/keys.ts. */
  conversationKey: string;
  user: { id: string; name?: string };
  /** For the channel allow-list; omit where there is no channel (web, CLI). */
  channelId?: string;
  text: string;
  /** The first image is used; none means "the conversation's current image". */
  images: readonly ImageRef[];
  /** How a user of this surface gives an image, said when the conversation has none yet ("Attach an image and ask again."). */
  noImageHint?: string;
  /**
   * The platform's id of this request (message id, interaction id, event id).
   * Becomes the job id, so a retried delivery maps onto the same job.
   */
  requestId?: string;
}

export type ProgressEvent =
  | { type: 'downloading' }
  | { type: 'queued'; position: number }
  | { type: 'started' };

export interface HandleOptions {
  onProgress?: (event: ProgressEvent) => void;
  signal?: AbortSignal;
  /** How the surface wants the overlay; the assistant falls back to JPEG and then downscales to fit `maxBytes`. */
  overlay?: { format?: OverlayFormat; maxBytes?: number };
}

export interface ReplySegment extends Segment {
  index: number;
  /** Its palette colour; the emoji is the text marker that matches the overlay. */
  colour: SegmentColour;
  /** True when the mask is empty: the answer pointed at nothing visible. */
  empty: boolean;
}

export interface ReplyImage {
  data: Buffer;
  contentType: string;
  format: OverlayFormat;
  width: number;
  height: number;
  /** A file name for uploads, e.g. `lisa-overlay.png`. */
  filename: string;
}

export interface Reply {
  jobId: string;
  conversationKey: string;
  /** The answer with each `[SEG]` replaced by its segment's emoji marker. */
  text: string;
  /** The answer as the model wrote it (`[SEG]` kept). */
  rawText: string;
  /** The generated token ids (EOS excluded), for comparing a pack with its reference. */
  ids: number[];
  /** The image with the masks drawn; absent when the answer has no `[SEG]`. */
  overlay?: ReplyImage;
  segments: ReplySegment[];
  /** Set when the model is a demo pack (toy/bench), to show as a banner. */
  demoNotice?: string;
  /** Index of this turn in the conversation (0-based). */
  turnIndex: number;
  timings: StageTimings;
}

/** A stored turn as a surface shows it again. */
export interface PastTurn {
  /** Its place in the stored conversation (0-based). */
  index: number;
  question: string;
  /** The answer with its markers, as Reply.text. */
  text: string;
  segments: Omit<ReplySegment, 'rle'>[];
  /** True when the turn brought a new image (the first turn about it). */
  newImage: boolean;
  imageHash: string;
  /** Epoch milliseconds. */
  at: number;
}

/** The one orchestrator every surface calls. Rejects with UserInputError for anything the user should read. */
export interface AssistantPort {
  handle(turn: IncomingTurn, options?: HandleOptions): Promise<Reply>;
  /** Forget a conversation (the web "New conversation" button). */
  resetConversation(conversationKey: string): Promise<void>;
  /** True the first time `key` is seen within `ttlMs` (platform retry dedupe), shared through the session store. */
  firstDelivery(key: string, ttlMs: number): Promise<boolean>;
  /** Whether a conversation has an image to work on (Slack `/lisa` with no image, Discord `/segment` without one). */
  hasImage(conversationKey: string): Promise<boolean>;
  /** The model's name, and a demo notice when it is not LISA. */
  readonly model: { name: string; demo: boolean };
  /** The stored conversation, oldest turn first (the web page shows it again after a reload). Test doubles may leave it out. */
  history?(conversationKey: string): Promise<PastTurn[]>;
  /** A stored turn's image as a thumbnail, or with its masks drawn; undefined when no longer kept. */
  pastImage?(conversationKey: string, index: number, which: 'thumbnail' | 'overlay'): Promise<ReplyImage | undefined>;
}
