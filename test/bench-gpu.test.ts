import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GPU_STAGES, decoderWeightBytes } from '../src/bench/gpu-run.js';
import { knownBandwidth } from '../src/bench/gpu-device.js';
import { loadManifest } from '../src/engine/manifest.js';
import { providerMissing } from '../src/engine/providers.js';
import { makeToyPack } from './helpers/toy.js';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../src/bench/gpu.ts', import.meta.url));

/** `npm run bench:gpu -- ARGS`, as a user runs it. */
async function benchGpu(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', SCRIPT, ...args], { maxBuffer: 16 * 2 ** 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout: string; stderr: string };
    return { code: e.code ?? -1, stdout: e.stdout, stderr: e.stderr };
  }
}

let toy: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  toy = await makeToyPack();
});
afterAll(() => toy.cleanup());

describe('bench:gpu', () => {
  it('reports every stage, tokens/s and the floor per provider as JSON', async () => {
    const result = await benchGpu(['--model', toy.dir, '--turns', '2', '--providers', 'cpu', '--bandwidth', '50', '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    const weights = await decoderWeightBytes(toy.dir, await loadManifest(toy.dir));
    expect(weights).toBeGreaterThan(0);
    expect(report.pack).toMatchObject({ dir: toy.dir, name: 'toy', dtype: 'float32', decoderForm: 'plain', decoderWeightBytes: weights });
    expect(report.bandwidth).toEqual({ gbps: 50, source: 'flag' });
    expect(report.turnsPerProvider).toBe(2);
    expect(report.providers).toHaveLength(1);
    const cpu = report.providers[0];
    expect(cpu.provider).toBe('cpu');
    expect(cpu.unavailable).toBeNull();
    // Every stage the GPU bench times (gpu-run.ts), not a list restated here.
    expect(Object.keys(cpu.stagesMs).sort()).toEqual([...GPU_STAGES].sort());
    for (const stage of GPU_STAGES) expect(cpu.stagesMs[stage]).toEqual(expect.any(Number));
    // The toy pack answers "Sure, it is [SEG]." every time: the mask decoder runs.
    expect(cpu.generated).toBeGreaterThan(1);
    expect(cpu.stagesMs.maskDecoder).toBeGreaterThan(0);
    expect(cpu.decodeTokensPerSecond).toBeCloseTo(((cpu.generated - 1) / cpu.stagesMs.decodeSteps) * 1000, 6);
    // Floor: each decode step (all tokens but the prefill's) reads every decoder weight once at 50 GB/s.
    expect(cpu.floorMs).toBeCloseTo((((cpu.generated - 1) * weights) / 50e9) * 1000, 9);
    expect(cpu.floorRatio).toBeCloseTo(cpu.stagesMs.decodeSteps / cpu.floorMs, 6);
    // No NVIDIA GPU in a CPU run: nothing to read the peak from.
    expect(cpu.peakGpuMemoryMiB).toBeNull();
  });

  it('prints a table, and a provider that cannot load here as not measured', async () => {
    const providers = ['cpu', ...(['cuda', 'webgpu'] as const).filter((p) => providerMissing(p))];
    const result = await benchGpu(['--model', toy.dir, '--turns', '1', '--providers', providers.join(',')]);
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toMatch(/^pack: toy \(float32, plain decoder, decoder weights [\d.]+ GB\)$/);
    expect(result.stdout).toMatch(/bandwidth: (unknown \(pass --bandwidth GBps\)|\d+ GB\/s \(known GPUs table\))/);
    const header = lines.find((l) => l.startsWith('provider'))!;
    for (const column of ['turn 1', 'vision', 'prefill', 'decode', 'SAM enc', 'mask dec', 'tok/s', 'GPU peak', 'x floor']) expect(header).toContain(column);
    expect(lines.find((l) => l.startsWith('cpu '))).toMatch(/^cpu +\d/);
    for (const missing of providers.slice(1)) {
      expect(lines.find((l) => l.startsWith(`${missing} `))).toMatch(new RegExp(`^${missing} +not available here, not measured: .*${missing} provider unavailable`));
    }
  });

  it('says what is wrong with a bad pack path or an unknown provider', async () => {
    const noPack = await benchGpu(['--model', '/nonexistent/pack', '--providers', 'cpu']);
    expect(noPack.code).toBe(2);
    expect(noPack.stderr.trim()).toBe(
      'bench:gpu: No model pack at /nonexistent/pack: /nonexistent/pack/lisa.json is not found. Make one with `lisa-bot models toy --out /nonexistent/pack`.',
    );
    const unknown = await benchGpu(['--model', toy.dir, '--providers', 'cpu,vulkan']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe('bench:gpu: unknown provider "vulkan": --providers takes a comma-separated list of cuda, tensorrt, webgpu, cpu');
    const noModel = await benchGpu([]);
    expect(noModel.code).toBe(2);
    expect(noModel.stderr).toMatch(/^bench:gpu: --model is required\. usage: npm run bench:gpu -- --model PACK/);
  });

  it('knows the memory bandwidth of common NVIDIA GPUs by the name nvidia-smi prints', () => {
    expect(knownBandwidth('NVIDIA H100 80GB HBM3')).toBe(3350);
    expect(knownBandwidth('NVIDIA H100 PCIe')).toBe(2000);
    expect(knownBandwidth('NVIDIA H200')).toBe(4800);
    expect(knownBandwidth('NVIDIA A100-SXM4-80GB')).toBe(2039);
    expect(knownBandwidth('NVIDIA A100 80GB PCIe')).toBe(1935);
    expect(knownBandwidth('NVIDIA L4')).toBe(300);
    expect(knownBandwidth('NVIDIA L40S')).toBe(864);
    expect(knownBandwidth('NVIDIA GeForce RTX 4090')).toBe(1008);
    expect(knownBandwidth('Some Future GPU')).toBeUndefined();
  });
});
