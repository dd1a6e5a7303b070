/**
 * Polygon rasterisation as OpenCV draws integer points with `fillPoly` and
 * `polylines(closed, thickness 1)` (8-connected lines, no shift): ReasonSeg's
 * ground truth is defined by what those calls paint, edge pixels included, so
 * a "more correct" scan conversion would score every model differently from
 * the paper.
 */

export type Point = readonly [number, number];

/** Fixed-point fraction bits OpenCV's polygon filler uses for edge x positions. */
const XY_SHIFT = 16;
const XY_ONE = 2 ** XY_SHIFT;

/** Paints `value` into `mask` (width x height, row-major) over the closed polygon `points`. */
export function drawPolygon(mask: Uint8Array, width: number, height: number, points: readonly Point[], value: number): void {
  if (points.length === 0) return;
  for (let i = 0; i < points.length; i++) {
    const from = points[i === 0 ? points.length - 1 : i - 1]!;
    drawLine(mask, width, height, from, points[i]!, value);
  }
  fillScanlines(mask, width, height, points, value);
}

/**
 * An 8-connected Bresenham line, clipped to the image first and then walked
 * left to right, as OpenCV's LineIterator does: both decide which pixels a
 * line that leaves the image or meets an exact tie paints.
 */
function drawLine(mask: Uint8Array, width: number, height: number, a: Point, b: Point, value: number): void {
  const clipped = clipLine(width, height, a, b);
  if (!clipped.visible) return;
  let [x0, y0] = clipped.a;
  let [x1, y1] = clipped.b;
  if (x1 < x0) {
    [x0, x1] = [x1, x0];
    [y0, y1] = [y1, y0];
  }
  const dx = x1 - x0;
  const dyAbs = Math.abs(y1 - y0);
  const stepY = y1 < y0 ? -1 : 1;
  const steep = dyAbs > dx;
  const major = steep ? dyAbs : dx;
  const minor = steep ? dx : dyAbs;
  let err = major - 2 * minor;
  let x = x0;
  let y = y0;
  for (let i = 0; i <= major; i++) {
    if (x >= 0 && x < width && y >= 0 && y < height) mask[y * width + x] = value;
    const diagonal = err < 0;
    err += -2 * minor + (diagonal ? 2 * major : 0);
    if (steep) {
      y += stepY;
      if (diagonal) x += 1;
    } else {
      x += 1;
      if (diagonal) y += stepY;
    }
  }
}

function outcode(width: number, height: number, x: number, y: number): number {
  return (x < 0 ? 1 : 0) + (x > width - 1 ? 2 : 0) + (y < 0 ? 4 : 0) + (y > height - 1 ? 8 : 0);
}

/**
 * OpenCV's integer clipLine: ends outside the image are moved onto its border,
 * first along y, then along x, with truncated intersections.
 */
function clipLine(width: number, height: number, a: Point, b: Point): { visible: boolean; a: [number, number]; b: [number, number] } {
  let [x1, y1] = a;
  let [x2, y2] = b;
  const right = width - 1;
  const bottom = height - 1;
  let c1 = outcode(width, height, x1, y1);
  let c2 = outcode(width, height, x2, y2);
  if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
    if (c1 & 12) {
      const edge = c1 < 8 ? 0 : bottom;
      x1 += Math.trunc(((edge - y1) * (x2 - x1)) / (y2 - y1));
      y1 = edge;
      c1 = (x1 < 0 ? 1 : 0) + (x1 > right ? 2 : 0);
    }
    if (c2 & 12) {
      const edge = c2 < 8 ? 0 : bottom;
      x2 += Math.trunc(((edge - y2) * (x2 - x1)) / (y2 - y1));
      y2 = edge;
      c2 = (x2 < 0 ? 1 : 0) + (x2 > right ? 2 : 0);
    }
    if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
      if (c1) {
        const edge = c1 === 1 ? 0 : right;
        y1 += Math.trunc(((edge - x1) * (y2 - y1)) / (x2 - x1));
        x1 = edge;
        c1 = 0;
      }
      if (c2) {
        const edge = c2 === 1 ? 0 : right;
        y2 += Math.trunc(((edge - x2) * (y2 - y1)) / (x2 - x1));
        x2 = edge;
        c2 = 0;
      }
    }
  }
  return { visible: (c1 | c2) === 0, a: [x1, y1], b: [x2, y2] };
}

interface Edge {
  /** First and one-past-last scanline. */
  y0: number;
  y1: number;
  /** x at y0 and per scanline, in 16.16 fixed point. */
  x: number;
  dx: number;
}

/**
 * Even-odd scanline fill: each edge covers scanlines [top, bottom), its x
 * stepped in 16.16 fixed point with a truncated slope; on each scanline the
 * sorted crossings pair up and each pair fills ceil(left)..floor(right)
 * (the outline lines cover the pixels this leaves out).
 */
function fillScanlines(mask: Uint8Array, width: number, height: number, points: readonly Point[], value: number): void {
  const edges: Edge[] = [];
  for (let i = 0; i < points.length; i++) {
    const [ax, ay] = points[i === 0 ? points.length - 1 : i - 1]!;
    const [bx, by] = points[i]!;
    if (ay === by) continue;
    const dx = Math.trunc(((bx - ax) * XY_ONE) / (by - ay));
    edges.push(ay < by ? { y0: ay, y1: by, x: ax * XY_ONE, dx } : { y0: by, y1: ay, x: bx * XY_ONE, dx });
  }
  if (edges.length < 2) return;
  const top = Math.max(0, Math.min(...edges.map((e) => e.y0)));
  const bottom = Math.min(height, Math.max(...edges.map((e) => e.y1)));
  const crossings: number[] = [];
  for (let y = top; y < bottom; y++) {
    crossings.length = 0;
    for (const e of edges) if (e.y0 <= y && y < e.y1) crossings.push(e.x + (y - e.y0) * e.dx);
    crossings.sort((p, q) => p - q);
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const left = Math.max(0, Math.ceil(crossings[k]! / XY_ONE));
      const right = Math.min(width - 1, Math.floor(crossings[k + 1]! / XY_ONE));
      if (left <= right) mask.fill(value, y * width + left, y * width + right + 1);
    }
  }
}

/** Pixels a polygon paints on its own (the reference's sort key). */
export function polygonArea(width: number, height: number, points: readonly Point[]): number {
  const mask = new Uint8Array(width * height);
  drawPolygon(mask, width, height, points, 1);
  let area = 0;
  for (let i = 0; i < mask.length; i++) area += mask[i]!;
  return area;
}
