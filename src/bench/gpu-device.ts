/**
 * What bench:gpu knows about the GPU: its name and memory through nvidia-smi
 * (when there is one), and the memory bandwidth that sets the decode floor.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Peak memory bandwidth in GB/s from the vendors' data sheets, matched on the
 * name nvidia-smi prints (first match wins, so the specific names come first).
 */
const KNOWN_BANDWIDTH: readonly [RegExp, number][] = [
  [/H200/i, 4800],
  [/H100.*NVL/i, 3900],
  [/H100.*PCIe/i, 2000],
  [/H100/i, 3350], // SXM5 (HBM3)
  [/A100.*80GB.*PCIe/i, 1935],
  [/A100.*80GB/i, 2039], // SXM4
  [/A100/i, 1555], // 40GB
  [/L40S/i, 864],
  [/\bL4\b/i, 300],
  [/A10G?\b/i, 600],
  [/RTX 4090/i, 1008],
  [/RTX 3090/i, 936],
  [/V100/i, 900],
  [/\bT4\b/i, 320],
];

export function knownBandwidth(gpuName: string): number | undefined {
  return KNOWN_BANDWIDTH.find(([pattern]) => pattern.test(gpuName))?.[1];
}

/** The first NVIDIA GPU's name, or undefined where nvidia-smi is missing or fails. */
export async function nvidiaGpuName(): Promise<string | undefined> {
  try {
    const { stdout } = await run('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { timeout: 10_000 });
    return stdout.split('\n')[0]?.trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Samples this process's GPU memory (nvidia-smi's per-process used_memory,
 * which includes onnxruntime's arenas) while a provider runs, and keeps the
 * peak. Undefined where nvidia-smi is missing: the report says n/a.
 */
export class GpuMemorySampler {
  private peakMiB: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();

  constructor(private readonly pid = process.pid) {}

  start(intervalMs = 250): void {
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sample());
    }, intervalMs);
  }

  async stop(): Promise<number | undefined> {
    clearInterval(this.timer);
    await this.sampling;
    await this.sample();
    return this.peakMiB;
  }

  private async sample(): Promise<void> {
    try {
      const { stdout } = await run('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], { timeout: 10_000 });
      for (const line of stdout.split('\n')) {
        const [pid, used] = line.split(',').map((s) => Number(s.trim()));
        if (pid === this.pid && Number.isFinite(used)) this.peakMiB = Math.max(this.peakMiB ?? 0, used!);
      }
    } catch {
      // No nvidia-smi (or no NVIDIA GPU): nothing to sample.
    }
  }
}

/**
 * The decode floor: a greedy step must read every decoder weight once, so
 * `tokens` steps take at least tokens x weight bytes / bandwidth. (The KV
 * cache's reads come on top; at these lengths they are small beside the weights.)
 */
export function decodeFloorMs(tokens: number, decoderWeightBytes: number, bandwidthGBps: number): number {
  return (tokens * decoderWeightBytes) / (bandwidthGBps * 1e9) * 1000;
}
