/**
 * Runs the PyTorch reference (models/reference/run_reference.py) and reads
 * what it wrote: ids per turn and raw tensors, for comparing a pack with it.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../models/reference/run_reference.py', import.meta.url));

export interface ReferenceTensorFile {
  file: string;
  shape: number[];
  dtype: 'float32' | 'uint8';
}

export interface ReferenceTurn {
  question: string;
  prompt_ids: number[];
  generated_ids: number[];
  stopped_by_eos: boolean;
  text: string;
  seg_count: number;
  seg_steps: number[];
  min_top2_margin: number | null;
  tensors: Record<string, ReferenceTensorFile>;
}

export interface ReferenceResult {
  dir: string;
  original_size: [number, number];
  seg_token_id: number;
  eos_token_id: number;
  turns: ReferenceTurn[];
}

export interface ReferenceRequest {
  checkpoint: string;
  visionTower: string;
  image: string;
  questions: string[];
  maxNewTokens: number;
  out: string;
}

export async function runReference(python: string, request: ReferenceRequest): Promise<ReferenceResult> {
  const args = [SCRIPT, '--checkpoint', request.checkpoint, '--vision-tower', request.visionTower, '--image', request.image];
  for (const q of request.questions) args.push('--question', q);
  args.push('--max-new-tokens', String(request.maxNewTokens), '--out', request.out);
  await run(python, args, { maxBuffer: 16 * 2 ** 20, timeout: 600_000 });
  const result = JSON.parse(await readFile(path.join(request.out, 'result.json'), 'utf8')) as Omit<ReferenceResult, 'dir'>;
  return { ...result, dir: request.out };
}

/** The generated ids without the stopping EOS: what `ask --json` reports. */
export function answerIds(turn: ReferenceTurn, eosId: number): number[] {
  const ids = turn.generated_ids;
  return ids.length > 0 && ids[ids.length - 1] === eosId ? ids.slice(0, -1) : ids;
}

export async function referenceFloats(result: ReferenceResult, turn: ReferenceTurn, name: string): Promise<{ shape: number[]; data: Float32Array }> {
  const spec = turn.tensors[name];
  if (!spec) throw new Error(`the reference wrote no tensor ${name}`);
  const bytes = await readFile(path.join(result.dir, spec.file));
  const data = spec.dtype === 'uint8' ? Float32Array.from(bytes) : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
  return { shape: spec.shape, data };
}

/** Largest |a - b|, and the largest |b| (to state tolerances relative to the reference's scale). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}
