import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreSample, summarise } from '../src/eval/metrics.js';
import { drawPolygon, type Point } from '../src/eval/polygon.js';
import { groundTruth, readAnnotation } from '../src/eval/reasonseg.js';
import { pythonAvailability } from './helpers/python.js';

describe('eval metrics (intersectionAndUnionGPU, foreground class, ignore 255)', () => {
  it('counts a sample as the reference does: ignored pixels out of both masks', () => {
    const truth = Uint8Array.from([1, 1, 0, 255, 0, 1, 255]);
    const prediction = Uint8Array.from([1, 0, 1, 1, 0, 0, 1]);
    // Foreground: predicted {0, 2}, target {0, 1, 5}, both {0}; pixels 3 and 6 are ignored.
    const score = scoreSample(prediction, truth);
    expect(score).toEqual({ intersection: 1, union: 4, iou: 1 / (4 + 1e-5) });
    expect(scoreSample(new Uint8Array(3), Uint8Array.from([0, 255, 0]))).toEqual({ intersection: 0, union: 0, iou: 1 });
  });

  it('gIoU is the mean of per-sample IoUs, cIoU the ratio of the sums', () => {
    const summary = summarise([
      { intersection: 1, union: 4 },
      { intersection: 0, union: 0 },
      { intersection: 0, union: 5 },
      { intersection: 30, union: 30 },
    ]);
    expect(summary.samples).toBe(4);
    expect(summary.gIoU).toBeCloseTo((100 * (1 / (4 + 1e-5) + 1 + 0 + 30 / (30 + 1e-5))) / 4, 10);
    expect(summary.cIoU).toBeCloseTo((100 * 31) / (39 + 1e-10), 10);
    expect(summarise([{ intersection: 0, union: 0 }])).toEqual({ samples: 1, gIoU: 100, cIoU: 0 });
  });
});

/** A seeded generator, so a failure names a case that reproduces. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const py = pythonAvailability();

describe.skipIf(py.skip)('eval ground truth against OpenCV (python3-opencv)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-eval-gt-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function python(script: string, input: unknown): unknown {
    return JSON.parse(execFileSync(py.python, ['-c', script], { input: JSON.stringify(input), maxBuffer: 256 * 2 ** 20 }).toString());
  }

  it('paints polygons pixel for pixel as fillPoly + polylines do, vertices outside the image included', () => {
    const next = random(16);
    const cases = Array.from({ length: 200 }, (_, i) => {
      const width = 4 + Math.floor(next() * 50);
      const height = 4 + Math.floor(next() * 50);
      const n = 3 + Math.floor(next() * 7);
      // Every third case keeps its vertices inside; the rest may stray a few pixels out.
      const margin = i % 3 === 0 ? 0 : 6;
      const points = Array.from({ length: n }, (): Point => [
        Math.floor(-margin + next() * (width + 2 * margin)),
        Math.floor(-margin + next() * (height + 2 * margin)),
      ]);
      return { width, height, points };
    });
    const expected = python(
      `import sys, json, numpy as np, cv2
out = []
for c in json.load(sys.stdin):
    m = np.zeros((c["height"], c["width"]), np.uint8)
    p = np.array([c["points"]], dtype=np.int32)
    cv2.polylines(m, p, True, 1, 1)
    cv2.fillPoly(m, p, 1)
    out.append(m.flatten().tolist())
print(json.dumps(out))`,
      cases,
    ) as number[][];
    cases.forEach((c, i) => {
      const mask = new Uint8Array(c.width * c.height);
      drawPolygon(mask, c.width, c.height, c.points, 1);
      expect(Array.from(mask), `case ${i}: ${c.width}x${c.height} ${JSON.stringify(c.points)}`).toEqual(expected[i]);
    });
  });

  it("builds ReasonSeg's ground truth as get_mask_from_json does: flag dropped, largest first, ignore 255", async () => {
    const width = 64;
    const height = 48;
    const annotation = {
      text: ['the thing'],
      is_sentence: false,
      shapes: [
        { label: 'ignore', points: [[10.9, 10.2], [30.7, 10.5], [30.1, 30.9], [10.4, 30.3]] },
        { label: 'target', points: [[2, 2], [60, 4], [58, 44], [5, 40]] },
        { label: 'flag', points: [[0, 0], [63, 0], [63, 47]] },
        // Two of equal area overlapping: which wins depends on the order they are drawn in.
        { label: 'target_2', points: [[40, 20], [50, 20], [50, 30], [40, 30]] },
        { label: 'Ignore', points: [[45, 25], [55, 25], [55, 35], [45, 35]] },
        { label: 'target', points: [[-5, 44], [20, 60], [-3, 70]] },
      ],
    };
    const file = path.join(dir, 'sample.json');
    await writeFile(file, JSON.stringify(annotation));
    const expected = python(
      `import sys, json, numpy as np, cv2
a = json.load(open(${JSON.stringify(file)}))
shapes = [s for s in a["shapes"] if s["label"].lower() != "flag"]
areas = []
for s in shapes:
    m = np.zeros((${height}, ${width}), np.uint8)
    p = np.array([s["points"]], dtype=np.int32)
    cv2.polylines(m, p, True, 1, 1)
    cv2.fillPoly(m, p, 1)
    areas.append(m.sum())
mask = np.zeros((${height}, ${width}), np.uint8)
for i in list(np.argsort(areas)[::-1]):
    s = shapes[i]
    v = 255 if "ignore" in s["label"].lower() else 1
    p = np.array([s["points"]], dtype=np.int32)
    cv2.polylines(mask, p, True, v, 1)
    cv2.fillPoly(mask, p, v)
print(json.dumps(mask.flatten().tolist()))`,
      null,
    ) as number[];
    const truth = groundTruth(await readAnnotation(file), width, height);
    expect(Array.from(truth)).toEqual(expected);
    expect(new Set(truth)).toEqual(new Set([0, 1, 255]));
  });
});

describe('eval annotations', () => {
  it('reads the first text, and cp1252 JSON where UTF-8 fails', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-eval-json-'));
    try {
      const file = path.join(dir, 'a.json');
      const json = JSON.stringify({ text: ['  the caf\u00e9\u2019s sign ', 'second'], is_sentence: true, shapes: [] });
      // 0x92 is cp1252's right single quote.
      await writeFile(file, Buffer.from(json.replace('\u2019', '\u0092'), 'latin1'));
      const annotation = await readAnnotation(file);
      expect(annotation).toEqual({ text: 'the caf\u00e9\u2019s sign', isSentence: true, shapes: [] });
      expect(await readFile(file)).toContain(0x92);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
