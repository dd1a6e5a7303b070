import { request, Agent } from 'node:http';
import { Gauge } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { UserInputError } from '../src/errors.js';
import { type HealthServer, Metrics, Readiness, startHealthServer } from '../src/metrics/index.js';
import { parseExposition, sampleValue } from './helpers/prometheus.js';

const servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: { metrics?: Metrics; readiness?: Readiness } = {}) {
  const metrics = options.metrics ?? new Metrics();
  const readiness = options.readiness ?? new Readiness();
  const server = await startHealthServer({ host: '127.0.0.1', port: 0, metrics, readiness, field: 'worker.metricsPort' });
  servers.push(server);
  return { server, metrics, readiness, url: (path: string) => new URL(path, server.url).href };
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

async function scrape(url: string) {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return parseExposition(await response.text()).samples;
}

describe('the health server', () => {
  it('answers /healthz while alive and /readyz by readiness, loading first', async () => {
    const { url, readiness } = await start();
    const alive = await fetch(url('/healthz'));
    expect(alive.status).toBe(200);
    expect(await alive.json()).toEqual({ ok: true });

    const loading = await fetch(url('/readyz'));
    expect(loading.status).toBe(503);
    expect(loading.headers.get('cache-control')).toBe('no-store');
    expect(await loading.json()).toEqual({ ready: false, reason: 'the model is loading' });

    readiness.markReady();
    const ready = await fetch(url('/readyz'));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
  });

  it('is not ready while a check fails, even after markReady, and recovers with it', async () => {
    const { url, readiness } = await start();
    const queue = { up: true };
    const removeCheck = readiness.addCheck(() => (queue.up ? undefined : 'the job queue (Redis) is unreachable'));
    readiness.markReady();
    expect((await fetch(url('/readyz'))).status).toBe(200);

    queue.up = false;
    const down = await fetch(url('/readyz'));
    expect(down.status).toBe(503);
    expect(await down.json()).toEqual({ ready: false, reason: 'the job queue (Redis) is unreachable' });
    // Alive is another question: a worker that lost Redis is not restarted for it.
    expect((await fetch(url('/healthz'))).status).toBe(200);

    queue.up = true;
    expect((await fetch(url('/readyz'))).status).toBe(200);

    queue.up = false;
    removeCheck();
    expect((await fetch(url('/readyz'))).status).toBe(200);
    readiness.markNotReady('shutting down');
    expect(await (await fetch(url('/readyz'))).json()).toEqual({ ready: false, reason: 'shutting down' });
  });

  it('answers 404 elsewhere and 405 with Allow: GET to other methods', async () => {
    const { url } = await start();
    const missing = await fetch(url('/api/turns'));
    expect(missing.status).toBe(404);
    expect(await errorCode(missing)).toBe('not_found');

    const posted = await fetch(url('/metrics'), { method: 'POST', body: 'x'.repeat(100_000) });
    expect(posted.status).toBe(405);
    expect(posted.headers.get('allow')).toBe('GET');
    expect(await errorCode(posted)).toBe('method_not_allowed');
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });

  it('serves Prometheus text whose counters move with turns, graphs and caches', async () => {
    const { url, metrics } = await start();
    const before = await scrape(url('/metrics'));
    expect(sampleValue(before, 'lisabot_turns_total', { outcome: 'answered' })).toBe(0);
    // No model loaded (serve with a queue never loads one): no load time, rather than 0.
    expect(before.some((s) => s.name === 'lisabot_model_load_seconds')).toBe(false);

    metrics.modelLoaded(1.5, 'cuda');
    metrics.inferenceDone({ graphRuns: [{ graph: 'decoder', startMs: 0, endMs: 40 }], imageEmbeddings: 'miss', tokens: { prompt: 10, reusedFromCache: 4 } });
    metrics.turnAnswered(0.3);
    metrics.turnAnswered(2);
    metrics.turnFailed(new UserInputError('No image.', 'no_image'));
    metrics.turnFailed(new UserInputError('Cancelled.', 'cancelled'));
    metrics.turnFailed(new Error('boom'));

    const after = await scrape(url('/metrics'));
    expect(sampleValue(after, 'lisabot_turns_total', { outcome: 'answered', code: '' })).toBe(2);
    expect(sampleValue(after, 'lisabot_turns_total', { outcome: 'user_error', code: 'no_image' })).toBe(1);
    expect(sampleValue(after, 'lisabot_turns_total', { outcome: 'cancelled', code: 'cancelled' })).toBe(1);
    expect(sampleValue(after, 'lisabot_turns_total', { outcome: 'internal_error', code: '' })).toBe(1);
    expect(sampleValue(after, 'lisabot_turn_duration_seconds_count')).toBe(2);
    expect(sampleValue(after, 'lisabot_turn_duration_seconds_bucket', { le: '0.5' })).toBe(1);
    expect(sampleValue(after, 'lisabot_graph_duration_seconds_count', { graph: 'decoder' })).toBe(1);
    expect(sampleValue(after, 'lisabot_image_embedding_cache_total', { result: 'miss' })).toBe(1);
    expect(sampleValue(after, 'lisabot_prompt_positions_total', { source: 'cache' })).toBe(4);
    expect(sampleValue(after, 'lisabot_prompt_positions_total', { source: 'computed' })).toBe(6);
    expect(sampleValue(after, 'lisabot_model_load_seconds')).toBe(1.5);
    expect(sampleValue(after, 'lisabot_execution_provider', { provider: 'cuda' })).toBe(1);
  });

  it('shows the in-process queue depth as it is at each scrape', async () => {
    const { url, metrics } = await start();
    const queue = { size: 2, running: 1 };
    metrics.watchQueue(queue);
    let samples = await scrape(url('/metrics'));
    expect(sampleValue(samples, 'lisabot_queue_depth', { state: 'waiting' })).toBe(2);
    expect(sampleValue(samples, 'lisabot_queue_depth', { state: 'running' })).toBe(1);
    // Nothing to lose: an in-process queue has no reachability gauge.
    expect(samples.some((s) => s.name === 'lisabot_queue_reachable')).toBe(false);
    queue.size = 0;
    samples = await scrape(url('/metrics'));
    expect(sampleValue(samples, 'lisabot_queue_depth', { state: 'waiting' })).toBe(0);
  });

  it("shows a shared queue's queue-wide counts, and leaves them out while they cannot be read", async () => {
    const metrics = new Metrics({ queueCountsTimeoutMs: 200 });
    const { url } = await start({ metrics });
    metrics.turnAnswered(1);
    const redis = { state: 'up' as 'up' | 'failing' | 'hanging' | 'disconnected', asked: 0 };
    metrics.watchQueue({
      reachable: () => redis.state !== 'disconnected',
      counts: async () => {
        redis.asked++;
        if (redis.state === 'failing') throw new Error('Connection is closed.');
        if (redis.state === 'hanging') return new Promise<never>(() => {});
        return { waiting: 5, running: 2 };
      },
    });
    let samples = await scrape(url('/metrics'));
    expect(sampleValue(samples, 'lisabot_queue_depth', { state: 'waiting' })).toBe(5);
    expect(sampleValue(samples, 'lisabot_queue_depth', { state: 'running' })).toBe(2);
    expect(sampleValue(samples, 'lisabot_queue_reachable')).toBe(1);
    // Both gauges read one answer per scrape.
    expect(redis.asked).toBe(1);

    for (const state of ['failing', 'hanging', 'disconnected'] as const) {
      redis.state = state;
      samples = await scrape(url('/metrics'));
      expect(samples.some((s) => s.name === 'lisabot_queue_depth'), state).toBe(false);
      expect(sampleValue(samples, 'lisabot_queue_reachable'), state).toBe(0);
      // The rest of the scrape is there.
      expect(sampleValue(samples, 'lisabot_turns_total', { outcome: 'answered' }), state).toBe(1);
    }

    redis.state = 'up';
    samples = await scrape(url('/metrics'));
    expect(sampleValue(samples, 'lisabot_queue_depth', { state: 'waiting' })).toBe(5);
    expect(sampleValue(samples, 'lisabot_queue_reachable')).toBe(1);
  });

  it('answers 500 when a route fails, and keeps serving', async () => {
    const metrics = new Metrics();
    new Gauge({
      name: 'test_broken',
      help: 'a collector that throws',
      registers: [metrics.registry],
      collect() {
        throw new Error('collector broke');
      },
    });
    const { url } = await start({ metrics });
    const failed = await fetch(url('/metrics'));
    expect(failed.status).toBe(500);
    expect(await errorCode(failed)).toBe('internal');
    expect((await fetch(url('/healthz'))).status).toBe(200);
  });

  it('refuses a port in use with the host:port and the config key to change', async () => {
    const { server } = await start();
    const port = Number(new URL(server.url).port);
    const error = await startHealthServer({
      host: '127.0.0.1',
      port,
      metrics: new Metrics(),
      readiness: new Readiness(),
      field: 'worker.metricsPort',
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('config_invalid');
    const { message } = error as UserInputError;
    expect(message).toContain(`127.0.0.1:${port}`);
    expect(message).toContain('EADDRINUSE');
    expect(message).toContain('worker.metricsPort (LISABOT_WORKER_METRICS_PORT)');
    expect(message).toContain('worker.metricsHost (LISABOT_WORKER_METRICS_HOST)');
  });

  it('closes with a scraper still holding a keep-alive connection', async () => {
    const { server, url } = await start();
    const agent = new Agent({ keepAlive: true });
    // Wrapped: a promise resolved with a promise would wait for the socket to close.
    const { socketClosed } = await new Promise<{ socketClosed: Promise<void> }>((resolve, reject) => {
      const req = request(url('/healthz'), { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ socketClosed: new Promise<void>((closed) => req.socket!.once('close', () => closed())) }));
      });
      req.on('error', reject);
      req.end();
    });
    await server.close();
    await socketClosed;
    agent.destroy();
    await expect(fetch(url('/healthz'))).rejects.toThrow();
  });
});
