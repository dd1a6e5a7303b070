import type { PackOptions } from './pack.js';
import type { ImageSource } from './types.js';

/** How an engine is made (Engine.open, EngineThread.open). */
export interface EngineOptions extends PackOptions {
  /** Where the engine reads an image's file when a chat names it by hash and its embeddings are not cached. */
  images: ImageSource;
  /** Images over this many pixels are refused before decoding. */
  maxImagePixels?: number;
  cache?: { imageBytes?: number; kvBytes?: number };
  /** Most prompt-lookup draft tokens checked per decoder run (lookup.ts); 0 turns drafting off. */
  draftLength?: number;
  /** Runs the SAM image encoder on a thread and session of its own, beside the language model (sam-thread.ts). */
  samThread?: boolean;
}
