import { UserInputError } from '../errors.js';
import type { ImageRef } from './types.js';

export interface DownloadLimits {
  maxBytes: number;
  maxPixels: number;
  timeoutMs: number;
}

type UrlRef = Extract<ImageRef, { kind: 'url' }>;

const MAX_REDIRECTS = 3;

function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** Refuses what the platform already tells us is wrong, before a byte is downloaded. */
export function checkDeclared(ref: UrlRef, limits: DownloadLimits): void {
  const declared = ref.declared;
  if (!declared) return;
  const name = declared.name ? `"${declared.name}"` : 'The attachment';
  if (declared.contentType && !declared.contentType.toLowerCase().startsWith('image/')) {
    throw new UserInputError(`${name} is ${declared.contentType}, not an image. Attach a JPEG, PNG, WebP or GIF.`, 'image_unsupported');
  }
  if (declared.contentType?.toLowerCase().startsWith('image/svg')) {
    throw new UserInputError(`${name} is an SVG drawing; attach a photo or a screenshot (JPEG, PNG, WebP or GIF).`, 'image_unsupported');
  }
  if (declared.size !== undefined && declared.size > limits.maxBytes) {
    throw new UserInputError(`${name} is ${megabytes(declared.size)}; the limit is ${megabytes(limits.maxBytes)}.`, 'image_too_large');
  }
  if (declared.width && declared.height && declared.width * declared.height > limits.maxPixels) {
    throw new UserInputError(
      `${name} is ${declared.width}x${declared.height} pixels; the limit is ${(limits.maxPixels / 1e6).toFixed(0)} megapixels.`,
      'image_too_many_pixels',
    );
  }
}

function allowedUrl(raw: string, allowedHosts: readonly string[]): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UserInputError(`The image link is not a valid URL.`, 'download_failed');
  }
  const host = url.hostname.toLowerCase();
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || !allowedHosts.includes(host)) {
    throw new UserInputError(`Images are only fetched from ${allowedHosts.join(', ')}; not from ${host || raw}.`, 'download_failed');
  }
  return url;
}

/**
 * Downloads an image with a hard byte cap (checked from Content-Length and
 * while streaming), a timeout, and an allow-list of hosts that every redirect
 * must also satisfy: headers such as a bot token are only ever sent there.
 */
export async function downloadImage(ref: UrlRef, limits: DownloadLimits, signal?: AbortSignal): Promise<Uint8Array> {
  checkDeclared(ref, limits);
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let url = allowedUrl(ref.url, ref.allowedHosts);
  try {
    for (let hop = 0; ; hop++) {
      const response = await fetch(url, { headers: ref.headers, redirect: 'manual', signal: combined });
      if (response.status >= 300 && response.status < 400 && response.headers.has('location')) {
        await response.body?.cancel();
        if (hop >= MAX_REDIRECTS) throw new UserInputError('The image link redirects too many times.', 'download_failed');
        url = allowedUrl(new URL(response.headers.get('location')!, url).toString(), ref.allowedHosts);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new UserInputError(`Couldn't download the image (HTTP ${response.status}).`, 'download_failed');
      }
      return await readCapped(response, limits.maxBytes);
    }
  } catch (error) {
    if (error instanceof UserInputError) throw error;
    if (signal?.aborted) throw new UserInputError('The request was cancelled.', 'cancelled');
    if (timeout.aborted) {
      throw new UserInputError(`The image took longer than ${Math.round(limits.timeoutMs / 1000)} s to download.`, 'download_failed');
    }
    throw new UserInputError(`Couldn't download the image: ${(error as Error).message}`, 'download_failed');
  }
}

async function readCapped(response: Response, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new UserInputError(`The image is larger than the ${megabytes(maxBytes)} limit.`, 'image_too_large');
  const length = Number(response.headers.get('content-length'));
  if (Number.isFinite(length) && length > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}
