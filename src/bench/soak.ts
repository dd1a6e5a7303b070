/**
 * Memory soak: one `lisa-bot serve` (its own process, the web chat, the given
 * pack) takes many turns through the web API, then idles. Reported: RSS when
 * ready, the peak while the turns ran (VmHWM), and RSS after the idle period.
 * A bot runs for months, so what matters is that the peak follows the largest
 * image and that the settled value comes back near the ready one.
 *
 * Each turn's file differs (a PNG text chunk carrying its number), so every
 * turn decodes and encodes its image as a new one would, with no cache hit.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { oneTurn, procStatus, readyUrl } from './idle-serve.js';

export interface SoakOptions {
  root: string;
  pack: string;
  /** The image of every turn (each turn gets a distinct file of the same pixels). */
  image: Uint8Array;
  imageType: 'png' | 'jpeg';
  turns: number;
  idleSeconds: number;
  /** Extra environment for the server (e.g. MALLOC_ARENA_MAX to compare allocators). */
  env?: NodeJS.ProcessEnv;
}

export interface SoakResult {
  turns: number;
  idleSeconds: number;
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
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-bench-soak-'));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LISABOT_MODEL_PATH: options.pack,
    LISABOT_MODEL_PROVIDERS: '["cpu"]',
    LISABOT_WEB_HOST: '127.0.0.1',
    LISABOT_WEB_PORT: '0',
    LISABOT_STORE_URL: `sqlite://${path.join(dir, 'sessions.sqlite')}`,
    LISABOT_LOG_LEVEL: 'info',
    ...options.env,
  };
  // Only the web chat: a token in the caller's environment must not connect a bench run to Discord or Slack.
  for (const secret of ['DISCORD_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET']) delete env[secret];
  const child = spawn(process.execPath, [path.join(options.root, 'src/bin.js'), 'serve'], { cwd: options.root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const file = options.imageType === 'png' ? { name: 'large.png', type: 'image/png' } : { name: 'photo.jpg', type: 'image/jpeg' };
  try {
    const url = await readyUrl(child, 120_000);
    await sleep(2000);
    const readyRssMb = await procStatus(child.pid!, 'VmRSS');
    const started = performance.now();
    for (let i = 0; i < options.turns; i++) {
      const bytes = options.imageType === 'png' ? taggedPng(options.image, String(i)) : taggedJpeg(options.image, String(i));
      await oneTurn(url, bytes, file);
    }
    const secondsPerTurn = (performance.now() - started) / 1000 / Math.max(1, options.turns);
    const afterTurnsRssMb = await procStatus(child.pid!, 'VmRSS');
    await sleep(options.idleSeconds * 1000);
    return {
      turns: options.turns,
      idleSeconds: options.idleSeconds,
      readyRssMb,
      peakRssMb: await procStatus(child.pid!, 'VmHWM'),
      afterTurnsRssMb,
      settledRssMb: await procStatus(child.pid!, 'VmRSS'),
      secondsPerTurn,
    };
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    await rm(dir, { recursive: true, force: true });
  }
}
