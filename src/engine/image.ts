/**
 * Image decoding for the engine: bytes in, 8-bit RGB out, the way the LISA
 * reference reads images (OpenCV colour mode): EXIF orientation applied, alpha
 * dropped without flattening, grey expanded to RGB, first frame only, and no
 * colour management (OpenCV ignores ICC profiles, so the model saw raw values).
 */
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { UserInputError } from '../errors.js';
import type { DecodedImage } from './types.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'heif';

export interface ImageLimits {
  /** Width x height (after orientation, which does not change it) above which an image is refused. */
  maxPixels: number;
}

export interface ImageInfo {
  format: ImageFormat;
  /** Dimensions with EXIF orientation applied. */
  width: number;
  height: number;
}

const ACCEPTED: ReadonlySet<string> = new Set<ImageFormat>(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);
const ACCEPTED_LIST = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';

/** Reads the header only: format and oriented size, with every refusal decodeImage would give before decoding. */
export async function imageInfo(bytes: Uint8Array, limits: ImageLimits): Promise<ImageInfo> {
  const input = asBuffer(bytes);
  let meta: Metadata;
  try {
    // No pixel limit here: sharp would refuse without saying the size, and a header read allocates nothing big.
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw headerError(input, error);
  }
  const format = String(meta.format);
  if (!ACCEPTED.has(format)) {
    throw unsupported(describeContent(input) ?? describeSharpFormat(format));
  }
  if (format === 'heif' && meta.compression === 'hevc') {
    // Prebuilt sharp decodes AVIF only; iPhone HEIC photos are HEVC.
    throw new UserInputError(
      'That file is a HEIC photo (HEVC-compressed), which lisa-bot cannot decode. Send it as JPEG or PNG instead ' +
        '(on an iPhone: Settings > Camera > Formats > Most Compatible).',
      'image_unsupported',
    );
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw corrupt('it has no width or height');
  checkPixels(width, height, limits);
  return { format: format as ImageFormat, width, height };
}

/** Decodes an encoded image to 8-bit RGB (3 bytes per pixel, row-major, EXIF orientation applied). */
export async function decodeImage(bytes: Uint8Array, limits: ImageLimits): Promise<DecodedImage> {
  const info = await imageInfo(bytes, limits);
  const input = asBuffer(bytes);
  let result: { data: Buffer; info: OutputInfo };
  try {
    result = await sharp(input, {
      // Checked above with a better message; kept as the guard sharp itself enforces.
      limitInputPixels: pixelLimit(limits),
      failOn: 'warning',
      ignoreIcc: true,
      pages: 1,
    })
      .autoOrient()
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    const message = errorMessage(error);
    if (/exceeds pixel limit/i.test(message)) {
      const limit = fmt(pixelLimit(limits));
      throw new UserInputError(`The image is larger than the limit of ${limit} pixels. Send a smaller image.`, 'image_too_many_pixels');
    }
    if (/compression format|not been built|not built in/i.test(message)) {
      throw new UserInputError(
        `That ${info.format.toUpperCase()} file uses a compression lisa-bot cannot decode. Send it as JPEG or PNG instead.`,
        'image_unsupported',
      );
    }
    throw corrupt(firstLine(message));
  }
  const { data, info: out } = result;
  if (out.channels !== 3 || out.width !== info.width || out.height !== info.height || data.length !== out.width * out.height * 3) {
    throw new Error(
      `Image decode produced ${out.width}x${out.height}x${out.channels} (${data.length} bytes), expected ${info.width}x${info.height}x3`,
    );
  }
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: out.width, height: out.height };
}

function asBuffer(bytes: Uint8Array): Buffer {
  if (bytes.length === 0) throw new UserInputError('The image file is empty (0 bytes).', 'image_empty');
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function pixelLimit(limits: ImageLimits): number {
  if (!(limits.maxPixels > 0)) throw new Error(`maxPixels must be a positive number, got ${limits.maxPixels}`);
  return Math.min(Math.floor(limits.maxPixels), Number.MAX_SAFE_INTEGER);
}

function checkPixels(width: number, height: number, limits: ImageLimits): void {
  const limit = pixelLimit(limits);
  const pixels = width * height;
  if (pixels <= limit) return;
  throw new UserInputError(
    `The image is too large: ${width} x ${height} = ${fmt(pixels)} pixels, and the limit is ${fmt(limit)} pixels. Send a smaller image.`,
    'image_too_many_pixels',
  );
}

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function headerError(input: Buffer, error: unknown): UserInputError {
  // A known image signature that sharp cannot parse is a damaged file, not a wrong type.
  if (startsLikeImage(input)) return corrupt(firstLine(errorMessage(error)));
  return unsupported(describeContent(input));
}

function unsupported(what: string | undefined): UserInputError {
  const subject = what ? `That file is ${what}, not an image lisa-bot can read.` : 'That file is not an image lisa-bot can read.';
  return new UserInputError(`${subject} Send a ${ACCEPTED_LIST} image.`, 'image_unsupported');
}

function corrupt(detail: string): UserInputError {
  return new UserInputError(`The image file is damaged or incomplete and could not be decoded (${detail}).`, 'image_corrupt');
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim().slice(0, 200);
}

function describeSharpFormat(format: string): string {
  if (format === 'svg') return 'an SVG drawing';
  if (format === 'pdf') return 'a PDF document';
  return `a ${format.toUpperCase()} file`;
}

function startsWith(bytes: Uint8Array, signature: readonly number[], at = 0): boolean {
  if (bytes.length < at + signature.length) return false;
  return signature.every((b, i) => bytes[at + i] === b);
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  if (from >= bytes.length) return '';
  return Buffer.from(bytes.buffer, bytes.byteOffset + from, Math.min(to, bytes.length) - from).toString('latin1');
}

/** Signatures of the accepted formats: such a file that fails to parse is corrupt. */
function startsLikeImage(b: Uint8Array): boolean {
  return (
    startsWith(b, [0xff, 0xd8, 0xff]) ||
    startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) ||
    ascii(b, 0, 4) === 'GIF8' ||
    (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') ||
    startsWith(b, [0x49, 0x49, 0x2a, 0x00]) ||
    startsWith(b, [0x4d, 0x4d, 0x00, 0x2a]) ||
    (ascii(b, 4, 8) === 'ftyp' && /^(avif|avis|heic|heix|mif1|msf1)$/.test(ascii(b, 8, 12)))
  );
}

/** Names what the bytes are when they are a common non-image (for the refusal message). */
export function describeContent(b: Uint8Array): string | undefined {
  if (ascii(b, 0, 5) === '%PDF-') return 'a PDF document';
  if (startsWith(b, [0x50, 0x4b, 0x03, 0x04])) return 'a ZIP archive (or an Office document)';
  if (startsWith(b, [0x1f, 0x8b])) return 'a gzip archive';
  // BMP: "BM", then a DIB header whose size is one of the few defined ones.
  if (ascii(b, 0, 2) === 'BM' && [12, 40, 52, 56, 64, 108, 124].includes(b[14] ?? 0) && b[15] === 0) return 'a BMP image (not supported)';
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00])) return 'an ICO icon (not supported)';
  if (ascii(b, 0, 4) === '8BPS') return 'a Photoshop document';
  if (startsWith(b, [0xff, 0x0a]) || ascii(b, 4, 8) === 'JXL ') return 'a JPEG XL image (not supported)';
  if (ascii(b, 4, 8) === 'ftyp' && !/^(avif|avis|heic|heix|mif1|msf1)$/.test(ascii(b, 8, 12))) return 'a video';
  if (startsWith(b, [0x1a, 0x45, 0xdf, 0xa3])) return 'a video';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) !== 'WEBP') return 'an audio or video file';
  if (ascii(b, 0, 3) === 'ID3' || ascii(b, 0, 4) === 'OggS') return 'an audio file';
  return describeText(b);
}

function describeText(b: Uint8Array): string | undefined {
  const head = b.subarray(0, 4096);
  let control = 0;
  for (let i = 0; i < head.length; i++) {
    const c = head[i]!;
    if (c === 0) return undefined;
    if (c < 9 || (c > 13 && c < 32)) control++;
  }
  if (control > head.length / 100) return undefined;
  const decoded = Buffer.from(head).toString('utf8');
  // Binary data without NULs decodes to many replacement characters; real text has none (bar a cut last char).
  if ((decoded.match(/\uFFFD/g)?.length ?? 0) > 1 + decoded.length / 100) return undefined;
  const text = decoded.replace(/^\uFEFF/, '').trimStart().toLowerCase();
  if (text.includes('<svg')) return 'an SVG drawing';
  if (/^<!doctype html|^<html|<head[\s>]|<body[\s>]/.test(text)) return 'an HTML page';
  if (text.startsWith('<?xml')) return 'an XML document';
  if (text.startsWith('{') || text.startsWith('[')) return 'JSON text';
  return 'a text file';
}
