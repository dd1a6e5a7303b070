/**
 * The converter's test fixtures: tiny LISA and CLIP checkpoints in the
 * published layouts, made by models/reference/make_fixtures.py. Made once and
 * kept under node_modules/.cache, keyed by the reference's source, so every
 * test file (and the next run) shares them; a change to the maker makes new ones.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const REFERENCE = path.join(ROOT, 'models/reference');

/** One turn of a fixture case, as the PyTorch reference answered it. */
export interface FixtureTurn {
  prompt_ids: number[];
  generated_ids: number[];
  /** Generated positions that are [SEG]. */
  seg_steps: number[];
}

/** A conversation the fixtures were solved for: a checkpoint, an image, its questions and answers. */
export interface FixtureCase {
  name: string;
  checkpoint: string;
  image: string;
  questions: string[];
  turns: FixtureTurn[];
}

/** The parts of models/reference's fixtures.json (as the maker writes it) that tests read. */
export interface FixtureIndex {
  cases: FixtureCase[];
  checkpoints: Record<string, { tokens: { seg: number } }>;
}

export interface ConverterFixtures {
  dir: string;
  index: FixtureIndex;
}

async function sourceHash(): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(REFERENCE)).filter((n) => n.endsWith('.py')).sort()) {
    hash.update(name).update(await readFile(path.join(REFERENCE, name)));
  }
  return hash.digest('hex').slice(0, 16);
}

export async function converterFixtures(python: string): Promise<ConverterFixtures> {
  const cache = path.join(ROOT, 'node_modules/.cache/lisa-bot');
  const dir = path.join(cache, `converter-fixtures-${await sourceHash()}`);
  if (!existsSync(path.join(dir, 'fixtures.json'))) {
    await mkdir(cache, { recursive: true });
    const temp = `${dir}.tmp-${process.pid}`;
    await rm(temp, { recursive: true, force: true });
    await run(python, [path.join(REFERENCE, 'make_fixtures.py'), '--out', temp], { maxBuffer: 16 * 2 ** 20, timeout: 300_000 });
    try {
      await rename(temp, dir);
    } catch (error) {
      // Another test file made them meanwhile: theirs are the same bytes.
      await rm(temp, { recursive: true, force: true });
      if (!existsSync(path.join(dir, 'fixtures.json'))) throw error;
    }
  }
  return { dir, index: JSON.parse(await readFile(path.join(dir, 'fixtures.json'), 'utf8')) };
}
