/**
 * The Dockerfile and config/compose.yaml, checked without a Docker engine
 * (none here): the compose services' environment, with the image's, is a
 * valid lisa-bot config whose ports are the ones their healthchecks call; the
 * image's one HEALTHCHECK finds each role's port; the pack job makes the toy
 * pack once where serve and workers look for it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { surfaces } from '../adapters/index.js';
import { loadConfig } from '../src/config/index.js';
import { Metrics, Readiness, startHealthServer } from '../src/metrics/index.js';

interface Service {
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { resources: { reservations: { devices: { driver: string; count?: number; capabilities: string[] }[] } } };
}

const compose = YAML.parseDocument(readFileSync('config/compose.yaml', 'utf8'), { merge: true }).toJS() as { services: Record<string, Service> };
const { serve, worker, pack, redis } = compose.services as Record<string, Service>;

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerfileInstructions(): { keyword: string; args: string }[] {
  const joined = readFileSync('Dockerfile', 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [, keyword, args] = /^\s*(\S+)\s+(.*)$/.exec(line)!;
      return { keyword: keyword!.toUpperCase(), args: args! };
    });
}
const instructions = dockerfileInstructions();
const finalStage = instructions.slice(instructions.map((i) => i.keyword).lastIndexOf('FROM'));

/** The runtime image's ENV, as `KEY=value` pairs. */
const imageEnv: Record<string, string> = Object.fromEntries(
  finalStage.filter((i) => i.keyword === 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!])),
);

/** A service's environment in its container: the image's, then the compose file's, with ${VAR:-default} at its default. */
function containerEnv(service: Service): Record<string, string> {
  const env = { ...imageEnv };
  for (const [key, value] of Object.entries(service.environment ?? {})) env[key] = String(value).replace(/\$\{\w+:-([^}]*)\}/g, '$1');
  return env;
}

function healthcheckUrl(service: Service): URL {
  const script = service.healthcheck!.test.at(-1)!;
  return new URL(/fetch\('([^']+)'\)/.exec(script)![1]!);
}

const scratch = mkdtempSync(path.join(tmpdir(), 'lisa-deploy-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(file: string, args: string[], env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { PATH: process.env.PATH!, ...env }, timeout: 60_000 }, (error) => resolve(error ? Number(error.code ?? 1) : 0));
  });
}

describe('config/compose.yaml', () => {
  it('gives serve and the worker a valid config on one queue, store and pack, with healthchecks on their ports', () => {
    const serveConfig = loadConfig({ env: containerEnv(serve!), surfaces });
    const workerConfig = loadConfig({ env: containerEnv(worker!), surfaces });
    expect(serveConfig.queue.url).toMatch(/^redis:\/\/redis:6379\//);
    expect(serveConfig.store.url).toMatch(/^redis:\/\/redis:6379\//);
    for (const key of ['queue', 'store'] as const) expect(workerConfig[key].url).toBe(serveConfig[key].url);
    expect(workerConfig.queue.name).toBe(serveConfig.queue.name);
    expect(workerConfig.model.path).toBe(serveConfig.model.path);

    expect(serve!.command).toEqual(['serve']);
    expect(serveConfig.web.host).toBe('0.0.0.0');
    expect(Number(healthcheckUrl(serve!).port)).toBe(serveConfig.web.port);
    expect(healthcheckUrl(serve!).pathname).toBe('/readyz');

    expect(worker!.command).toEqual(['worker']);
    expect(workerConfig.worker.metricsHost).toBe('0.0.0.0');
    expect(Number(healthcheckUrl(worker!).port)).toBe(workerConfig.worker.metricsPort);
    expect(healthcheckUrl(worker!).pathname).toBe('/readyz');
    expect(worker!.deploy!.resources.reservations.devices).toEqual([{ driver: 'nvidia', count: 1, capabilities: ['gpu'] }]);

    for (const service of [serve!, worker!]) {
      expect(service.depends_on).toEqual({ redis: { condition: 'service_healthy' }, pack: { condition: 'service_completed_successfully' } });
      expect(service.volumes).toContain('lisa-packs:/packs:ro');
    }
    expect(redis!.healthcheck!.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it("runs the pack job once: it makes the toy pack where serve's model.path points, and leaves it alone after", async () => {
    const packs = path.join(scratch, 'packs');
    const script = pack!.command!.join(' ').replaceAll('/packs', packs);
    expect(pack!.entrypoint).toEqual(['/bin/sh', '-c']);
    expect(await run('/bin/sh', ['-c', script], {})).toBe(0);
    const modelPath = loadConfig({ env: containerEnv(serve!), surfaces }).model.path.replace('/packs', packs);
    const manifest = path.join(modelPath, 'lisa.json');
    expect(existsSync(manifest)).toBe(true);
    const marker = `${readFileSync(manifest, 'utf8')}\n`;
    writeFileSync(manifest, marker);
    expect(await run('/bin/sh', ['-c', script], {})).toBe(0);
    expect(readFileSync(manifest, 'utf8')).toBe(marker);
  });
});

describe('Dockerfile', () => {
  it('runs any lisa-bot command, serve by default, and copies what exists', () => {
    expect(finalStage.find((i) => i.keyword === 'ENTRYPOINT')!.args).toBe('["./src/bin.js"]');
    expect(finalStage.find((i) => i.keyword === 'CMD')!.args).toBe('["serve"]');
    const defaults = loadConfig({ env: {}, surfaces });
    const exposed = finalStage.find((i) => i.keyword === 'EXPOSE')!.args.split(/\s+/).map(Number);
    expect(exposed).toEqual(expect.arrayContaining([defaults.web.port, defaults.worker.metricsPort, defaults.serve.metricsPort]));
    for (const copy of finalStage.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      for (const source of copy.args.split(/\s+/).slice(0, -1)) expect(existsSync(source), source).toBe(true);
    }
    // The image's environment is a valid config too (no unknown LISABOT_ variable).
    expect(loadConfig({ env: imageEnv, surfaces }).web.host).toBe('0.0.0.0');
  });

  it("HEALTHCHECK asks /readyz on the port of the role PID 1 runs", async () => {
    const healthcheck = finalStage.find((i) => i.keyword === 'HEALTHCHECK')!.args;
    const argv = JSON.parse(/CMD (\[.*\])$/.exec(healthcheck)![1]!) as string[];
    expect(argv.slice(0, 2)).toEqual(['node', '-e']);
    const cmdline = path.join(scratch, 'cmdline');
    expect(argv[2]).toContain('/proc/1/cmdline');
    const script = argv[2]!.replace('/proc/1/cmdline', cmdline);

    const ready = new Readiness();
    ready.markReady();
    const up = await startHealthServer({ host: '127.0.0.1', port: 0, metrics: new Metrics(), readiness: ready });
    const loading = await startHealthServer({ host: '127.0.0.1', port: 0, metrics: new Metrics(), readiness: new Readiness() });
    const upPort = new URL(up.url).port;
    const loadingPort = new URL(loading.url).port;
    const check = (pid1: string[], env: Record<string, string>) => {
      writeFileSync(cmdline, `${pid1.join('\0')}\0`);
      return run(process.execPath, ['-e', script], env);
    };
    const worker = ['node', 'src/bin.js', 'worker'];
    const serve = ['node', 'src/bin.js', 'serve'];
    try {
      expect(await check(worker, { LISABOT_WORKER_METRICS_PORT: upPort, LISABOT_WEB_PORT: loadingPort })).toBe(0);
      expect(await check(worker, { LISABOT_WORKER_METRICS_PORT: loadingPort, LISABOT_WEB_PORT: upPort })).toBe(1);
      // Under an init (docker run --init) PID 1 is docker-init, with the command after it.
      expect(await check(['/sbin/docker-init', '--', ...worker], { LISABOT_WORKER_METRICS_PORT: upPort })).toBe(0);
      expect(await check(serve, { LISABOT_WEB_PORT: upPort, LISABOT_WORKER_METRICS_PORT: loadingPort })).toBe(0);
      expect(await check(serve, { LISABOT_WEB_PORT: loadingPort })).toBe(1);
      expect(await check(serve, { LISABOT_WEB_ENABLED: 'false', LISABOT_SERVE_METRICS_PORT: upPort, LISABOT_WEB_PORT: loadingPort })).toBe(0);
      expect(await check(serve, { LISABOT_WEB_ENABLED: 'false', LISABOT_SERVE_METRICS_PORT: loadingPort, LISABOT_WEB_PORT: upPort })).toBe(1);
      expect(await check(worker, { HEALTHCHECK_URL: new URL('/readyz', up.url).href, LISABOT_WORKER_METRICS_PORT: loadingPort })).toBe(0);
    } finally {
      await up.close();
      await loading.close();
    }
  });
});
