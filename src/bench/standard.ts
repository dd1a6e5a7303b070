/**
 * `npm run bench`: the standard set, written to bench/results.json.
 *
 * 1. toy pack, 1920x1080 and 640x480 JPEG, single turns: host overhead;
 * 2. bench pack, 1920x1080, conversations of 3 turns: first turn vs follow-ups;
 * 3. bench pack, 8 conversations at once and 50 web posts while they run:
 *    queue wait, event-loop delay, web accept latency;
 * 4. idle `lisa-bot serve` with the toy pack: resident memory;
 * 5. the same server through 30 turns on a 6000x6000 PNG, then idle: peak and
 *    settled resident memory (soak.ts).
 *
 * Each scenario runs in a process of its own (`lisa-bot bench --json`), so
 * peak RSS, caches and warm-up belong to that scenario alone. The packs and
 * images are (re)generated under models/bench/ (git-ignored; deterministic,
 * so regenerating changes nothing), where `lisa-bot bench` can reuse them.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeBenchPack } from '../../models/generator/bench.js';
import { writeToyPack } from '../../models/generator/toy.js';
import { measureIdleServe } from './idle-serve.js';
import type { BenchResult } from './run.js';
import { flatPng, measureSoak } from './soak.js';
import { photoJpeg } from './standard-images.js';
import { stableJson } from './stats.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = path.join(root, 'models', 'bench');
const out = path.join(root, 'bench', 'results.json');

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** `lisa-bot bench ARGS --json` in a child process; its progress lines pass through. */
function bench(args: string[]): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'src/bin.js'), 'bench', ...args, '--json'], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`lisa-bot bench ${args.join(' ')} exited with ${code}`));
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as BenchResult);
      } catch (error) {
        reject(error);
      }
    });
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  await mkdir(work, { recursive: true });
  const packs = { toy: path.join(work, 'toy'), bench: path.join(work, 'bench') };
  const images = { large: path.join(work, 'photo-1920x1080.jpg'), small: path.join(work, 'photo-640x480.jpg') };
  log('generating the toy and bench packs and the images');
  await writeToyPack(packs.toy);
  await writeBenchPack(packs.bench);
  await writeFile(images.large, await photoJpeg(1920, 1080, 1));
  await writeFile(images.small, await photoJpeg(640, 480, 2));

  const scenarios = {
    // 30 turns per image: the median of 10 swung too much from run to run on a shared 2-core VM.
    toyHost: ['--model', packs.toy, '--image', images.large, '--image', images.small, '--runs', '30', '--warmup', '2', '--turns', '1'],
    benchTurns: ['--model', packs.bench, '--image', images.large, '--runs', '5', '--warmup', '1', '--turns', '3'],
    benchConcurrency: ['--model', packs.bench, '--image', images.large, '--runs', '0', '--warmup', '1', '--turns', '1', '--concurrency', '8', '--web-posts', '50'],
  };
  const results: Record<string, BenchResult> = {};
  for (const [name, args] of Object.entries(scenarios)) {
    log(`${name}: lisa-bot bench ${args.map((a) => path.relative(root, a) || a).join(' ')}`);
    results[name] = await bench([...args, '--provider', 'cpu']);
  }
  log('idle lisa-bot serve with the toy pack');
  const idleServe = await measureIdleServe({ root, pack: packs.toy, image: await readFile(images.large), idleSeconds: 5 });
  log('soak: lisa-bot serve with the toy pack, 30 turns on a 6000x6000 PNG, then 40 s idle');
  // 40 s: a large decoded image is kept 30 s for a follow-up (decoded-images.ts).
  const soak = await measureSoak({ root, pack: packs.toy, image: await flatPng(6000, 6000), imageType: 'png', turns: 30, idleSeconds: 40 });

  const toy = results.toyHost!.images[path.basename(images.large)]!;
  const turns = results.benchTurns!.images[path.basename(images.large)]!;
  const load = results.benchConcurrency!.concurrent!;
  const withinLimits = Object.values(results).every((r) => r.cache.imageEmbeddings.bytes <= r.cache.imageEmbeddings.limitBytes && r.cache.kv.bytes <= r.cache.kv.limitBytes);
  // The targets next to what was measured, so a change can be judged at a glance.
  const headline = {
    toyHostOverhead1080pMedianMs: { measured: toy.first!.turn.host.median, target: 50 },
    benchFollowUpOverFirstTurn: { measured: turns.followUpRatio ?? null, target: 0.3 },
    webAcceptP99Ms: { measured: load.web?.p99 ?? null, target: 100, queued: load.web?.queueDepth ?? null },
    eventLoopP99WhilePostingMs: {
      measured: load.web?.eventLoopDelay.p99 ?? null,
      target: 20,
      max: load.web?.eventLoopDelay.max ?? null,
      longestGraphRun: load.first.longestGraphRun,
    },
    idleServeRssMb: { measured: idleServe.readyIdleRssMb ?? null, afterOneTurn: idleServe.afterTurnIdleRssMb ?? null, target: 250 },
    soak6000PngRssMb: { ready: soak.readyRssMb ?? null, peak: soak.peakRssMb ?? null, settled: soak.settledRssMb ?? null, turns: soak.turns, allocator: soak.allocator ?? null },
    cachesWithinLimits: withinLimits,
  };
  const report = {
    machine: results.toyHost!.machine,
    reproduce: 'npm run bench (writes bench/results.json); one scenario: node src/bin.js bench --model models/bench/bench --image models/bench/photo-1920x1080.jpg --turns 3',
    headline,
    scenarios: { ...results, idleServe, soak },
    elapsedSeconds: (performance.now() - started) / 1000,
  };
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, stableJson(report));
  process.stdout.write(`${stableJson(headline)}`);
  log(`wrote ${path.relative(root, out)} in ${report.elapsedSeconds.toFixed(0)} s`);
}

await main();
