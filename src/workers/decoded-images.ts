import { LRUCache } from 'lru-cache';
import type { DecodedImage } from '../engine/types.js';

/**
 * Decoded pixels by image hash, for a few seconds: the engine decodes an
 * image for the encoders and the renderer needs the same pixels for the
 * overlay moments later. Sharing them in-process saves a second decode (tens
 * of ms for a photo); a GPU worker elsewhere simply never fills it, and the
 * renderer decodes. Short-lived and small, so an idle server holds no pixels.
 */
const decoded = new LRUCache<string, DecodedImage>({
  maxSize: 256 * 2 ** 20,
  sizeCalculation: (image) => Math.max(1, image.data.byteLength),
  ttl: 120_000,
  ttlAutopurge: true,
});

export function rememberDecoded(hash: string, image: DecodedImage): void {
  decoded.set(hash, image);
}

export function recallDecoded(hash: string): DecodedImage | undefined {
  return decoded.get(hash);
}
