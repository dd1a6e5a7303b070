/**
 * bench:gpu's report: per provider, the median of each stage over the turns
 * after the first (the first pays for kernel compilation and allocation, and
 * is shown apart), decode tokens/s, peak GPU memory, and the decode time over
 * its floor (every decode step reads every decoder weight once).
 */
import { median } from './stats.js';
import { GPU_STAGES, type GpuStage, type ProviderRun } from './gpu-run.js';
import { decodeFloorMs } from './gpu-device.js';

export interface GpuBenchReport {
  pack: { dir: string; name: string; dtype: string; decoderForm: string; decoderWeightBytes: number };
  gpu: string | null;
  /** GB/s used for the floor, and where it came from; null: unknown. */
  bandwidth: { gbps: number; source: 'flag' | 'table' } | null;
  turnsPerProvider: number;
  providers: ProviderReport[];
}

export interface ProviderReport {
  provider: string;
  /** Why the provider could not open the pack here (then nothing was measured); null: it ran. */
  unavailable: string | null;
  firstTurnMs: number | null;
  /** Medians over turns 2..N (turn 1 when there is only one). */
  stagesMs: Record<GpuStage, number> | null;
  totalMs: number | null;
  generated: number | null;
  decodeTokensPerSecond: number | null;
  peakGpuMemoryMiB: number | null;
  floorMs: number | null;
  /** decode time / floor: 1 would be the memory-bandwidth limit. */
  floorRatio: number | null;
}

export function providerReport(run: ProviderRun, decoderWeightBytes: number, bandwidthGBps: number | undefined): ProviderReport {
  if (run.unavailable !== undefined || run.turns.length === 0) {
    const empty = { firstTurnMs: null, stagesMs: null, totalMs: null, generated: null, decodeTokensPerSecond: null, floorMs: null, floorRatio: null };
    return { provider: run.provider, unavailable: run.unavailable ?? 'no turns ran', ...empty, peakGpuMemoryMiB: null };
  }
  const steady = run.turns.length > 1 ? run.turns.slice(1) : run.turns;
  const stagesMs = Object.fromEntries(GPU_STAGES.map((s) => [s, median(steady.map((t) => t.stages[s]))])) as Record<GpuStage, number>;
  const generated = median(steady.map((t) => t.generated));
  // The first answer token comes out of the prefill; the decode steps make the rest.
  const decodeTokens = Math.max(0, generated - 1);
  const floorMs = bandwidthGBps ? decodeFloorMs(decodeTokens, decoderWeightBytes, bandwidthGBps) : null;
  return {
    provider: run.provider,
    unavailable: null,
    firstTurnMs: run.turns[0]!.totalMs,
    stagesMs,
    totalMs: median(steady.map((t) => t.totalMs)),
    generated,
    decodeTokensPerSecond: stagesMs.decodeSteps > 0 ? (decodeTokens / stagesMs.decodeSteps) * 1000 : null,
    peakGpuMemoryMiB: run.peakGpuMemoryMiB ?? null,
    floorMs,
    floorRatio: floorMs && floorMs > 0 ? stagesMs.decodeSteps / floorMs : null,
  };
}

const ms = (v: number | null) => (v === null ? 'n/a' : v >= 100 ? v.toFixed(0) : v.toFixed(1));

export function formatGpuReport(report: GpuBenchReport): string {
  const { pack, bandwidth } = report;
  const lines = [
    `pack: ${pack.name} (${pack.dtype}, ${pack.decoderForm} decoder, decoder weights ${(pack.decoderWeightBytes / 1e9).toFixed(2)} GB)`,
    `gpu: ${report.gpu ?? 'none found (no nvidia-smi)'}; bandwidth: ${bandwidth ? `${bandwidth.gbps} GB/s (${bandwidth.source === 'flag' ? '--bandwidth' : 'known GPUs table'})` : 'unknown (pass --bandwidth GBps)'}`,
    `turns per provider: ${report.turnsPerProvider}; times are medians of turns 2..N in ms (turn 1 apart)`,
    '',
  ];
  const header = ['provider', 'turn 1', 'vision', 'prefill', 'decode', 'SAM enc', 'mask dec', 'total', 'tokens', 'tok/s', 'GPU peak', 'floor', 'x floor'];
  const rows = report.providers.map((p) => {
    if (p.unavailable !== null) return [p.provider, `not available here, not measured: ${p.unavailable}`];
    const s = p.stagesMs!;
    return [
      p.provider, ms(p.firstTurnMs), ms(s.visionEncoder), ms(s.prefill), ms(s.decodeSteps), ms(s.samEncoder), ms(s.maskDecoder), ms(p.totalMs),
      String(p.generated), p.decodeTokensPerSecond === null ? 'n/a' : p.decodeTokensPerSecond.toFixed(1),
      p.peakGpuMemoryMiB === null ? 'n/a' : `${p.peakGpuMemoryMiB} MiB`,
      p.floorMs === null ? 'unknown' : ms(p.floorMs), p.floorRatio === null ? 'unknown' : `${p.floorRatio.toFixed(1)}x`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 2).map((r) => r[i]!.length)));
  const line = (cells: string[]) => (cells.length === 2 ? `${cells[0]!.padEnd(widths[0]!)}  ${cells[1]}` : cells.map((c, i) => c.padStart(i === 0 ? 0 : widths[i]!).padEnd(i === 0 ? widths[0]! : 0)).join('  '));
  lines.push(line(header), ...rows.map(line));
  return lines.join('\n');
}
