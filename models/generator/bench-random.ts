/**
 * Fixed pseudo-random numbers for the bench pack. Every weight draws from its
 * own stream, seeded by the pack seed and the weight's name, so a weight's
 * values never depend on which weights were made before it: editing one graph
 * leaves every other graph byte for byte as it was.
 */

/** FNV-1a over the UTF-16 code units: a stable 32-bit seed for a name. */
export function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** mulberry32: tiny, fast, and plenty for weights nobody trains; same sequence on every platform. */
export function randomStream(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` values uniform in [-std*sqrt(3), std*sqrt(3)): mean 0, standard
 * deviation `std`. Uniform rather than Gaussian because it is cheaper and
 * bounded, which keeps float16 packs far from overflow.
 */
export function uniformValues(name: string, count: number, std: number): Float32Array {
  const next = randomStream(seedOf(name));
  const half = std * Math.sqrt(3);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() * 2 - 1) * half;
  return out;
}
