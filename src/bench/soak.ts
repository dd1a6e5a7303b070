/**
 * Memory soak: one `lisa-bot serve` (served.ts: its own process, the web chat,
 * the given pack) takes many turns through the web API, then idles. Reported: RSS when
 * ready, the peak while the turns ran (VmHWM), and RSS after the idle period.
 * A bot runs for months, so what matters is that the peak follows the largest
 * image and that the settled value comes back near the ready one.
 *
 * Each turn's file differs (a PNG text chunk carrying its number), so every
 * turn decodes and encodes its image as a new one would, with no cache hit.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { type ServedOptions, startServed } from './served.js';

export interface SoakOptions extends ServedOptions {
  /** The image of every turn (each turn gets a distinct file of the same pixels). */
  image: Uint8Array;
  imageType: 'png' | 'jpeg';
  turns: number;
  idleSeconds: number;
}

export interface SoakResult {
  turns: number;
  idleSeconds: number;
  /** jemalloc when `lisa-bot serve` found it installed (src/bin.js), else the system's malloc. */
  allocator?: 'jemalloc' | 'system';
  readyRssMb?: number;
  /** VmHWM once the turns are done: the most the process was ever resident. */
  peakRssMb?: number;
  /** RSS right after the last turn, and after the idle period. */
  afterTurnsRssMb?: number;
  settledRssMb?: number;
  secondsPerTurn: number;
}

/** A large PNG that compresses to little (flat areas): the kind of upload that costs memory, not bandwidth. */
export async function flatPng(width: number, height: number): Promise<Buffer> {
  const half = Math.floor(height / 2);
  return sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 60 } } })
    .composite([{ input: { create: { width: Math.floor(width / 2), height: half, channels: 3, background: { r: 230, g: 30, b: 30 } } }, top: Math.floor(height / 4), left: Math.floor(width / 4) }])
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** `png` with a tEXt chunk after its header: the same pixels, another file (and hash). */
export function taggedPng(png: Uint8Array, tag: string): Uint8Array {
  const IHDR_END = 8 + 8 + 13 + 4;
  const body = Buffer.concat([Buffer.from('tEXt'), Buffer.from(`lisa-soak\0${tag}`, 'latin1')]);
  const chunk = Buffer.alloc(4 + body.length + 4);
  chunk.writeUInt32BE(body.length - 4, 0);
  body.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(body), 4 + body.length);
  return Buffer.concat([png.subarray(0, IHDR_END), chunk, png.subarray(IHDR_END)]);
}

/** `jpeg` with a comment segment after SOI: the same pixels, another file. */
function taggedJpeg(jpeg: Uint8Array, tag: string): Uint8Array {
  const text = Buffer.from(`lisa-soak ${tag}`, 'latin1');
  const com = Buffer.alloc(4 + text.length);
  com.writeUInt16BE(0xfffe, 0);
  com.writeUInt16BE(text.length + 2, 2);
  text.copy(com, 4);
  return Buffer.concat([jpeg.subarray(0, 2), com, jpeg.subarray(2)]);
}

export async function measureSoak(options: SoakOptions): Promise<SoakResult> {
  const served = await startServed(options);
  const file = options.imageType === 'png' ? { name: 'large.png', type: 'image/png' } : { name: 'photo.jpg', type: 'image/jpeg' };
  try {
    await sleep(2000);
    const readyRssMb = await served.memory('VmRSS');
    const started = performance.now();
    for (let i = 0; i < options.turns; i++) {
      const bytes = options.imageType === 'png' ? taggedPng(options.image, String(i)) : taggedJpeg(options.image, String(i));
      await served.turn(bytes, file);
    }
    const secondsPerTurn = (performance.now() - started) / 1000 / Math.max(1, options.turns);
    const afterTurnsRssMb = await served.memory('VmRSS');
    await sleep(options.idleSeconds * 1000);
    return {
      turns: options.turns,
      idleSeconds: options.idleSeconds,
      allocator: await served.allocator(),
      readyRssMb,
      peakRssMb: await served.memory('VmHWM'),
      afterTurnsRssMb,
      settledRssMb: await served.memory('VmRSS'),
      secondsPerTurn,
    };
  } finally {
    await served.stop();
  }
}
