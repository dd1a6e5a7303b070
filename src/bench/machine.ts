import { createRequire } from 'node:module';
import os from 'node:os';

export interface MachineInfo {
  cpu: string;
  /** CPUs this process may use (affinity / cgroup aware): what onnxruntime's thread pools see. */
  cores: number;
  /** CPUs the kernel reports, which a container may not be allowed to use. */
  hostCpus: number;
  memoryGb: number;
  /** 1-minute load average when the bench started: above `cores`, something else was competing. */
  loadAverage: number;
  node: string;
  platform: string;
  onnxruntime: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  const require = createRequire(import.meta.url);
  let onnxruntime = 'unknown';
  try {
    onnxruntime = (require('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    // Reported as unknown: the version is information, not a requirement.
  }
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    hostCpus: cpus.length,
    memoryGb: os.totalmem() / 2 ** 30,
    loadAverage: os.loadavg()[0] ?? 0,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    onnxruntime,
  };
}
