/**
 * Copies of a bench image that decode to the same pixels but hash
 * differently. Caches are keyed by the image's sha256, so a first turn
 * measured on bytes the engine has seen before would be a cache hit (and its
 * whole prompt a KV-cache hit): every measured conversation gets its own copy,
 * with a comment naming the run, so each first turn is genuinely cold.
 */
import { UserInputError } from '../errors.js';

const JPEG_SOI = [0xff, 0xd8];
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, prefix: readonly number[]): boolean {
  return prefix.every((b, i) => bytes[i] === b);
}

export function canMakeVariants(bytes: Uint8Array): boolean {
  return startsWith(bytes, JPEG_SOI) || startsWith(bytes, PNG_SIGNATURE);
}

/** `bytes` with `tag` added as metadata: a JPEG COM segment or a PNG tEXt chunk. */
export function imageVariant(bytes: Uint8Array, tag: string): Uint8Array {
  const payload = new TextEncoder().encode(tag);
  if (startsWith(bytes, JPEG_SOI)) return jpegWithComment(bytes, payload);
  if (startsWith(bytes, PNG_SIGNATURE)) return pngWithText(bytes, payload);
  throw new UserInputError(
    'lisa-bot bench needs JPEG or PNG images: it gives each run its own copy (a metadata comment) so that first turns miss the caches.',
    'image_unsupported',
  );
}

/** The COM segment goes after the APPn segments (JFIF/EXIF readers expect those first). */
function jpegWithComment(bytes: Uint8Array, payload: Uint8Array): Uint8Array {
  let at = 2;
  while (at + 4 <= bytes.length && bytes[at] === 0xff && ((bytes[at + 1]! >= 0xe0 && bytes[at + 1]! <= 0xef) || bytes[at + 1] === 0xfe)) {
    at += 2 + ((bytes[at + 2]! << 8) | bytes[at + 3]!);
  }
  const segment = new Uint8Array(4 + payload.length);
  segment.set([0xff, 0xfe, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  segment.set(payload, 4);
  return concat(bytes.subarray(0, at), segment, bytes.subarray(at));
}

/** A tEXt chunk right after IHDR (which must stay the first chunk). */
function pngWithText(bytes: Uint8Array, payload: Uint8Array): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ihdrEnd = 8 + 12 + view.getUint32(8);
  const body = concat(new TextEncoder().encode('tEXtComment\0'), payload);
  const chunk = new Uint8Array(body.length + 8);
  const out = new DataView(chunk.buffer);
  out.setUint32(0, body.length - 4);
  chunk.set(body, 4);
  out.setUint32(chunk.length - 4, crc32(body));
  return concat(bytes.subarray(0, ihdrEnd), chunk, bytes.subarray(ihdrEnd));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

let crcTable: Uint32Array | undefined;

/** PNG's CRC-32 (zlib.crc32 needs Node 20.15+; this runs on 20.9). */
function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
