/**
 * Run by test/memory.test.ts in a process of its own: large images decoded
 * into shared memory and drawn on by the pixel workers, as a turn does, then
 * released. Prints resident memory after the first image and at the end.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { sha256Hex } from '../../src/conversation/index.js';
import { countsToString } from '../../src/engine/mask.js';
import { taggedPng } from '../../src/bench/soak.js';
import { gc } from '../../src/memory/collect.js';
import { DecodedImages } from '../../src/render/decoded-images.js';
import { OverlayWorkers } from '../../src/render/overlay-workers.js';

const WIDTH = 4000;
const HEIGHT = 3000;
const TURNS = 12;

const rssMb = () => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

const png = await sharp({ create: { width: WIDTH, height: HEIGHT, channels: 3, background: { r: 30, g: 140, b: 60 } } }).png().toBuffer();
const pixels = new OverlayWorkers(2);
const images = new DecodedImages(pixels, { maxPixels: 40e6 });
// A mask over the left third (column-major runs: zeros, ones, zeros).
const rle = { size: [HEIGHT, WIDTH] as [number, number], counts: countsToString([0, HEIGHT * (WIDTH / 3), HEIGHT * (WIDTH - WIDTH / 3)]) };

async function turn(i: number): Promise<void> {
  const bytes = taggedPng(png, String(i));
  const lease = await images.acquire(sha256Hex(bytes), bytes);
  try {
    await pixels.overlay(lease.image, [{ rle, rgb: [255, 0, 0], bbox: [0, 0, WIDTH / 3, HEIGHT] }], 'png');
  } finally {
    lease.release();
  }
}

async function settle(): Promise<void> {
  images.clear();
  for (let i = 0; i < 5; i++) await nextTurn();
  gc();
}

await turn(0);
await settle();
const baselineMb = rssMb();
for (let i = 1; i <= TURNS; i++) await turn(i);
await settle();
// The workers collect after their own tasks; give them a moment to have done so.
await new Promise((resolve) => setTimeout(resolve, 500));
const settledMb = rssMb();
await pixels.close();
process.stdout.write(`${JSON.stringify({ baselineMb, settledMb, imageMb: (WIDTH * HEIGHT * 3) / 2 ** 20 })}\n`);
