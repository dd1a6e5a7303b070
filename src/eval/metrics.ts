/**
 * The reference's metrics (train_ds.py `validate` with utils.py
 * `intersectionAndUnionGPU`, 2 classes, ignore 255), for the foreground class.
 */
import { IGNORE } from './reasonseg.js';

export interface SampleScore {
  /** Foreground pixels in both prediction and ground truth, ignored pixels left out. */
  intersection: number;
  /** Foreground pixels in either, ignored pixels left out. */
  union: number;
  iou: number;
}

/** `prediction` 0/1, `truth` 0/1/255, same size. */
export function scoreSample(prediction: Uint8Array, truth: Uint8Array): SampleScore {
  if (prediction.length !== truth.length) throw new Error(`mask sizes differ: ${prediction.length} vs ${truth.length}`);
  let intersection = 0;
  let predicted = 0;
  let target = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    if (t === IGNORE) continue;
    const p = prediction[i] ? 1 : 0;
    predicted += p;
    target += t;
    intersection += p & t;
  }
  const union = predicted + target - intersection;
  return { intersection, union, iou: sampleIou(intersection, union) };
}

/** The reference's per-sample IoU: I / (U + 1e-5), and 1.0 where U = 0 (nothing to find, nothing found). */
export function sampleIou(intersection: number, union: number): number {
  return union === 0 ? 1 : intersection / (union + 1e-5);
}

export interface Summary {
  samples: number;
  /** Mean of the per-sample IoUs, in percent. */
  gIoU: number;
  /** Sum of intersections over sum of unions, in percent. */
  cIoU: number;
}

export function summarise(scores: readonly { intersection: number; union: number }[]): Summary {
  let intersection = 0;
  let union = 0;
  let iouSum = 0;
  for (const s of scores) {
    intersection += s.intersection;
    union += s.union;
    iouSum += sampleIou(s.intersection, s.union);
  }
  const n = scores.length;
  return {
    samples: n,
    gIoU: n === 0 ? 0 : (100 * iouSum) / n,
    // The reference's 1e-10 keeps an all-empty run at 0 instead of NaN.
    cIoU: (100 * intersection) / (union + 1e-10),
  };
}

/** Percent with two decimals, as the paper reports. */
export function percent(value: number): string {
  return value.toFixed(2);
}
