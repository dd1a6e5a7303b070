/**
 * `npm run bench:scale-out`: turns per second through `lisa-bot serve` with a
 * Redis queue and 1, 2, … `lisa-bot worker`s (next to serve running turns
 * itself), the resident memory of serve and of a worker, and how long a turn
 * takes to be answered after its worker is SIGKILLed mid-turn. Starts its
 * own redis-server (on PATH) on a free port and, unless --model is given, a
 * toy pack in a temp dir; everything goes when the run ends, Ctrl-C included.
 *
 *   npm run bench:scale-out -- [--turns 40] [--workers 1,2] [--model DIR]
 *     [--recovery-lock-ms MS] [--recovery-stalled-ms MS] [--recovery-turns 8]
 *     [--skip-in-process] [--skip-recovery] [--idle-seconds 3] [--cpu-threads N] [--json]
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/index.js';
import { type MachineInfo, machineInfo } from './machine.js';
import { Started } from './scale-out-cluster.js';
import { type RssMb, type ScaleOutReport, runScaleOutBench } from './scale-out-run.js';

function positive(name: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} takes a whole number >= ${min}, not "${text}"`);
  return value;
}

function mb(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(0);
}

function seconds(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(1);
}

function rss(r: RssMb | undefined): string {
  return r ? `${mb(r.idle)} / ${mb(r.peak)} / ${mb(r.hwm)}` : '-';
}

function table(report: ScaleOutReport, turns: number, machine: MachineInfo): string {
  const out = [
    `scale-out benchmark: ${report.pack} pack, ${turns} turns per row (each its own conversation, with a 640x480 JPEG), posted at once`,
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGb.toFixed(0)} GB, load ${machine.loadAverage.toFixed(2)} at start; node ${machine.node}, onnxruntime-node ${machine.onnxruntime}`,
    '',
    `${'run'.padEnd(18)}${'answered'.padStart(9)}${'seconds'.padStart(9)}${'turns/s'.padStart(9)}   serve RSS MB idle / peak / HWM   worker RSS MB idle / peak / HWM   CPU s serve / workers`,
  ];
  for (const row of report.rows) {
    const label = row.workers === 0 ? 'in-process serve' : `queue, ${row.workers} worker${row.workers === 1 ? '' : 's'}`;
    out.push(
      `${label.padEnd(18)}${`${row.answered}/${row.turns}`.padStart(9)}${row.seconds.toFixed(1).padStart(9)}${row.turnsPerSecond.toFixed(2).padStart(9)}   ${rss(row.serve).padEnd(33)}${rss(row.worker).padEnd(34)}${seconds(row.cpuSeconds.serve)} / ${seconds(row.cpuSeconds.workers)}`,
    );
  }
  out.push('', 'RSS: idle = VmRSS after start and idle, before any turn; peak = highest VmRSS sampled while the turns ran; HWM = VmHWM at the end (model load included). Worker: the largest over the workers. CPU s: user + system time used while the turns ran, serve and all workers together.');
  const r = report.recovery;
  if (r) {
    out.push(
      '',
      `recovery (queue.lockMs ${r.lockMs}, queue.stalledIntervalMs ${r.stalledIntervalMs}): one of 2 workers SIGKILLed holding ${r.retakenJobId};`,
      `  answered ${r.secondsToAnswer.toFixed(1)} s after the kill by ${r.retakenBy ?? 'no other worker'}; finished ${r.retakenFinishedCount}x, stored ${r.retakenStoredTurns}x; ${r.answered}/${r.turns} turns answered, every conversation stored once: ${r.everyTurnStoredOnce ? 'yes' : 'NO'}`,
    );
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const machine = machineInfo();
  const { values } = parseArgs({
    options: {
      turns: { type: 'string' },
      workers: { type: 'string' },
      model: { type: 'string' },
      'recovery-lock-ms': { type: 'string' },
      'recovery-stalled-ms': { type: 'string' },
      'recovery-turns': { type: 'string' },
      'skip-in-process': { type: 'boolean' },
      'skip-recovery': { type: 'boolean' },
      'idle-seconds': { type: 'string' },
      'cpu-threads': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  // The recovery defaults are the config's own, so the run measures what an operator gets.
  const defaults = loadConfig({ surfaces: [], env: {} }).queue;
  const turns = positive('turns', values.turns, 40);
  const workers = (values.workers ?? '1,2').split(',').map((w) => positive('workers', w.trim(), 1));
  const started = new Started();
  process.once('exit', () => started.stopAllNow());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench:scale-out: ${signal}, stopping everything it started\n`);
      started.stopAllNow();
      process.exit(130);
    });
  }
  const report = await runScaleOutBench({
    pack: values.model,
    turns,
    workers,
    inProcess: !values['skip-in-process'],
    recovery: values['skip-recovery']
      ? undefined
      : {
          lockMs: positive('recovery-lock-ms', values['recovery-lock-ms'], defaults.lockMs),
          stalledIntervalMs: positive('recovery-stalled-ms', values['recovery-stalled-ms'], defaults.stalledIntervalMs),
          turns: positive('recovery-turns', values['recovery-turns'], 8, 2),
        },
    idleSeconds: positive('idle-seconds', values['idle-seconds'], 3, 0),
    cpuThreads: values['cpu-threads'] === undefined ? undefined : positive('cpu-threads', values['cpu-threads'], 0, 0),
    log: (line) => process.stderr.write(`bench:scale-out: ${line}\n`),
    started,
  });
  process.stdout.write(values.json ? `${JSON.stringify({ machine, turns, ...report }, null, 2)}\n` : `${table(report, turns, machine)}\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench:scale-out: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
