import type { ConversationStores, Session } from '../conversation/index.js';
import { sha256HexAsync } from '../conversation/index.js';
import { imageInfo } from '../engine/image.js';
import { UserInputError } from '../errors.js';
import { downloadImage } from './download.js';
import type { LimitSettings } from './limits.js';
import type { HandleOptions, ImageRef, IncomingTurn } from './types.js';

/** How to give an image, for a surface that does not say it in its own terms (IncomingTurn.noImageHint). */
const ATTACH_AN_IMAGE = 'Attach an image and ask again.';

export interface ResolvedImage {
  hash: string;
  bytes: Uint8Array;
}

/** What resolving an image needs of the assistant's options. */
interface ImageDeps {
  stores: ConversationStores;
  limits: LimitSettings & { maxImageBytes: number; maxImagePixels: number; downloadTimeoutMs: number };
}

/** The turn's new image (downloaded, checked, stored once by hash), or the conversation's current one. */
export async function resolveImage(
  { stores, limits }: ImageDeps,
  turn: IncomingTurn,
  session: Session | undefined,
  options: HandleOptions,
): Promise<ResolvedImage> {
  const ref: ImageRef | undefined = turn.images[0];
  if (ref) {
    let bytes: Uint8Array;
    if (ref.kind === 'url') {
      options.onProgress?.({ type: 'downloading' });
      bytes = await downloadImage(ref, { maxBytes: limits.maxImageBytes, maxPixels: limits.maxImagePixels, timeoutMs: limits.downloadTimeoutMs }, options.signal);
    } else {
      bytes = ref.data;
      if (bytes.byteLength > limits.maxImageBytes) {
        throw new UserInputError(
          `The image is ${(bytes.byteLength / 1e6).toFixed(1)} MB; the limit is ${(limits.maxImageBytes / 1e6).toFixed(1)} MB.`,
          'image_too_large',
        );
      }
    }
    const hash = await sha256HexAsync(bytes);
    try {
      // Sniffed from the bytes, with the pixel cap, before anything is stored or queued.
      await imageInfo(bytes, { maxPixels: limits.maxImagePixels });
    } catch (error) {
      if (error instanceof UserInputError && error.code === 'image_unsupported' && ref.kind === 'url' && ref.notImageHint) {
        throw new UserInputError(`${error.message} ${ref.notImageHint}`, error.code);
      }
      throw error;
    }
    // Stored before the job is queued (a worker elsewhere reads it by hash). Writing
    // it during the inference instead was tried: under a burst of 50 uploads the
    // deferred writes bunched up and the web API's p99 accept time more than doubled.
    await stores.images.put(bytes, hash);
    return { hash, bytes };
  }
  if (session?.imageHash) {
    const bytes = await stores.images.get(session.imageHash);
    if (bytes) return { hash: session.imageHash, bytes };
    throw new UserInputError("This conversation's image has expired. Send the image again with your question.", 'no_image');
  }
  throw new UserInputError(`There's no image to look at yet. ${turn.noImageHint ?? ATTACH_AN_IMAGE}`, 'no_image');
}
