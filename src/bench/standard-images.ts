/**
 * The standard bench images, made on the spot (deterministic): photo-like
 * content — gradients, texture and sensor-like noise, so that JPEG decoding
 * and PNG/WebP encoding of the overlay cost what they cost on photos (flat
 * synthetic images compress unrealistically well) — with a red rectangle and
 * a blue ellipse in the toy palette, which the bench's questions name, so
 * the toy pack draws real masks.
 */
import sharp from 'sharp';

function noise(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RED: [number, number, number] = [230, 30, 30];
const BLUE: [number, number, number] = [30, 80, 230];

export function photoPixels(width: number, height: number, seed = 1): Uint8Array {
  const next = noise(seed);
  const data = new Uint8Array(width * height * 3);
  const rect = { x0: width * 0.1, x1: width * 0.4, y0: height * 0.15, y1: height * 0.55 };
  const ellipse = { cx: width * 0.68, cy: height * 0.6, rx: width * 0.15, ry: height * 0.22 };
  for (let y = 0; y < height; y++) {
    const v = y / height;
    for (let x = 0; x < width; x++) {
      const u = x / width;
      const o = (y * width + x) * 3;
      const dx = (x - ellipse.cx) / ellipse.rx;
      const dy = (y - ellipse.cy) / ellipse.ry;
      const grain = (next() - 0.5) * 24;
      let rgb: readonly number[];
      if (x >= rect.x0 && x < rect.x1 && y >= rect.y0 && y < rect.y1) rgb = RED;
      else if (dx * dx + dy * dy <= 1) rgb = BLUE;
      else {
        // Sky-to-ground gradient with soft texture: nothing near a palette colour.
        const texture = 18 * Math.sin(u * 37 + Math.sin(v * 11) * 3) * Math.cos(v * 23 + u * 5);
        rgb = [140 + 60 * v + texture, 150 + 30 * Math.sin(u * 3) + texture, 170 - 70 * v + texture * 0.5];
      }
      for (let c = 0; c < 3; c++) data[o + c] = Math.max(0, Math.min(255, Math.round(rgb[c]! + grain)));
    }
  }
  return data;
}

export async function photoJpeg(width: number, height: number, seed = 1): Promise<Buffer> {
  return sharp(photoPixels(width, height, seed), { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}
