/** The readable form of a bench result (the JSON form is stats.stableJson). */
import { TURN_KEYS } from './breakdown.js';
import type { GroupSummary } from './breakdown.js';
import type { LoopDelay } from './loop.js';
import type { BenchResult } from './run.js';
import type { Summary } from './stats.js';

const ms = (n: number) => n.toFixed(1);
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const pad = (text: string, width: number) => text.padStart(width);

function cells(summary: Summary | undefined): string {
  return summary ? `${pad(ms(summary.median), 9)}${pad(ms(summary.p95), 9)}` : `${pad('-', 9)}${pad('-', 9)}`;
}

function loop(delay: LoopDelay): string {
  return `p50 ${ms(delay.p50)} · p99 ${ms(delay.p99)} · max ${ms(delay.max)} ms`;
}

function groupTable(groups: { title: string; group?: GroupSummary }[]): string[] {
  const present = groups.filter((g) => g.group);
  const lines = [
    `  ${'ms'.padEnd(16)}${present.map((g) => pad(`${g.title} (n=${g.group!.turns})`, 18)).join('   ')}`,
    `  ${''.padEnd(16)}${present.map(() => `${pad('median', 9)}${pad('p95', 9)}`).join('   ')}`,
  ];
  // Stages in the engine's own order (its timings object), then the breakdown.
  const stageKeys = [...new Set(present.flatMap((g) => Object.keys(g.group!.stages)))];
  const keys = [
    ...stageKeys.map((k) => ({ key: k, pick: (g: GroupSummary) => (g.stages as Record<string, Summary>)[k] })),
    ...TURN_KEYS.map((k) => ({ key: k, pick: (g: GroupSummary) => g.turn[k] })),
  ];
  for (const { key, pick } of keys) {
    if (key === TURN_KEYS[0]) lines.push(`  ${'-'.repeat(16 + present.length * 21)}`);
    const label = key === 'total' ? 'total (engine)' : key;
    lines.push(`  ${label.padEnd(16)}${present.map((g) => cells(pick(g.group!))).join('   ')}`);
  }
  for (const g of present) {
    const t = g.group!.tokens;
    const c = g.group!.imageCache;
    const graphs = Object.entries(g.group!.graphs).map(([name, v]) => `${name} ${ms(v.median)} ms/${v.runs} run(s)`);
    lines.push(`  ${g.title} graph runs (median): ${graphs.join(' · ')}; longest single run ${g.group!.longestGraphRun.graph} ${ms(g.group!.longestGraphRun.ms)} ms`);
    lines.push(`  ${g.title}: ${t.prompt} prompt positions, ${t.generated} generated in ${t.decodeRuns} decoder run(s) after the prefill, ${t.reusedFromCache} reused from the KV cache; image cache ${c.hits} hit(s), ${c.misses} miss(es); ${g.group!.segments} mask(s)`);
  }
  return lines;
}

export function formatReport(result: BenchResult): string {
  const m = result.machine;
  const s = result.settings;
  const lines = [
    `lisa-bot bench · pack "${result.pack.name}" (${result.pack.dtype}) on ${m.provider} · ${m.cpu}, ${m.cores} cores (load ${m.loadAverage.toFixed(1)}) · node ${m.node} · onnxruntime ${m.onnxruntime}`,
    `${s.runs} measured run(s) after ${s.warmup} warm-up(s) per image, ${s.turns} turn(s) per conversation, overlay ${s.format}`,
  ];
  for (const [label, image] of Object.entries(result.images)) {
    lines.push('', `${label} (${image.file.width}x${image.file.height}, ${(image.file.bytes / 1024).toFixed(0)} KB)`);
    lines.push(...groupTable([{ title: 'first turn', group: image.first }, { title: 'follow-up', group: image.followUp }]));
    if (image.followUpRatio !== undefined) lines.push(`  follow-up / first turn (median wall): ${image.followUpRatio.toFixed(2)}`);
    const steps = Object.entries(image.hostSteps).map(([k, v]) => `${k} ${ms(v.median)}/${ms(v.p95)}`);
    if (steps.length > 0) lines.push(`  host steps alone (median/p95 ms): ${steps.join(' · ')}`);
    lines.push(`  event loop delay: ${loop(image.eventLoopDelay)} · page faults per turn: ${image.pageFaultsPerTurn}`);
  }
  const c = result.concurrent;
  if (c) {
    lines.push('', `${c.concurrency} concurrent conversation(s) of ${c.turnsPerConversation} turn(s): ${(c.elapsedMs / 1000).toFixed(1)} s, ${c.turnsPerSecond.toFixed(2)} turns/s`);
    lines.push(...groupTable([{ title: 'first turn', group: c.first }, { title: 'follow-up', group: c.followUp }]));
    lines.push(`  queue wait: p50 ${ms(c.queueWait.p50)} · p99 ${ms(c.queueWait.p99)} · max ${ms(c.queueWait.max)} ms`);
    lines.push(`  event loop delay: ${loop(c.eventLoopDelay)}`);
    if (c.web) {
      const w = c.web;
      lines.push(`  web accept (${w.posts} POST /api/turns, ${w.queueDepth.min}-${w.queueDepth.max} waiting): p50 ${ms(w.p50)} · p99 ${ms(w.p99)} · max ${ms(w.max)} ms`);
      lines.push(`  event loop delay while posting: ${loop(w.eventLoopDelay)}`);
    }
  }
  const { imageEmbeddings: i, kv } = result.cache;
  lines.push('');
  lines.push(`cache: image embeddings ${i.entries} entries, ${mb(i.bytes)} of ${mb(i.limitBytes)}, ${i.hits} hits, ${i.misses} misses`);
  lines.push(`       KV ${kv.entries} entries, ${mb(kv.bytes)} of ${mb(kv.limitBytes)}, ${kv.hits} hits, ${kv.misses} misses`);
  lines.push(`memory: peak RSS ${result.memory.peakRssMb.toFixed(1)} MB, now ${result.memory.rssMb.toFixed(1)} MB · bench took ${(result.elapsedMs / 1000).toFixed(1)} s`);
  return `${lines.join('\n')}\n`;
}
