/**
 * Toy-pack style test images (flat palette shapes on white) and a check of
 * overlays: which shape got tinted.
 */
import sharp from 'sharp';

export const RED: [number, number, number] = [230, 30, 30];
export const BLUE: [number, number, number] = [30, 80, 230];
export const WHITE: [number, number, number] = [255, 255, 255];

export const WIDTH = 96;
export const HEIGHT = 64;
/** [x0, y0, x1, y1) of each shape. */
export const RED_BOX = [8, 12, 40, 52] as const;
export const BLUE_BOX = [56, 12, 88, 52] as const;

/** A red square on the left and a blue one on the right, on white; PNG. */
export async function twoShapesPng(): Promise<Buffer> {
  const raw = Buffer.alloc(WIDTH * HEIGHT * 3);
  for (let y = 0; y < HEIGHT; y++) {
    for (let x = 0; x < WIDTH; x++) {
      const inside = (b: readonly number[]) => x >= b[0] && y >= b[1] && x < b[2] && y < b[3];
      const rgb = inside(RED_BOX) ? RED : inside(BLUE_BOX) ? BLUE : WHITE;
      raw.set(rgb, (y * WIDTH + x) * 3);
    }
  }
  return sharp(raw, { raw: { width: WIDTH, height: HEIGHT, channels: 3 } }).png().toBuffer();
}

/** The pixel at the centre of a box of an encoded image. */
async function centre(image: Buffer, box: readonly number[]): Promise<[number, number, number]> {
  const { data, info } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const x = Math.floor(((box[0] + box[2]) / 2) * (info.width / WIDTH));
  const y = Math.floor(((box[1] + box[3]) / 2) * (info.height / HEIGHT));
  const i = (y * info.width + x) * info.channels;
  return [data[i], data[i + 1], data[i + 2]];
}

function distance(a: readonly number[], b: readonly number[]): number {
  return Math.abs(a[0] - b[0]) + Math.abs(a[1] - b[1]) + Math.abs(a[2] - b[2]);
}

/**
 * Which shapes an overlay tinted: a shape is tinted when its centre is no
 * longer its own colour. Masks are drawn in a colour far from what they
 * cover, so a tinted centre moves by far more than the threshold.
 */
export async function tintedShapes(overlay: Buffer): Promise<{ red: boolean; blue: boolean }> {
  const red = await centre(overlay, RED_BOX);
  const blue = await centre(overlay, BLUE_BOX);
  return { red: distance(red, RED) > 12, blue: distance(blue, BLUE) > 12 };
}
