/**
 * A platform redelivers an event, and the retry reaches a second `lisa-bot
 * serve` process (two bots behind one Slack app or Discord gateway, or a
 * restart): with a Redis queue and store, the two processes share one job,
 * the worker runs it once, and the conversation stores one turn.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { surfaces } from '../adapters/index.js';
import { type InferenceJob, type InferenceResult, inferenceHandler } from '../src/assistant/inference.js';
import type { IncomingTurn } from '../src/assistant/types.js';
import { type Config, loadConfig } from '../src/config/index.js';
import { type ConversationStores, openConversationStores } from '../src/conversation/index.js';
import type { EngineThread } from '../src/engine/thread.js';
import { type BullmqWorker, startBullmqWorker } from '../src/jobs/bullmq-worker.js';
import { createLogger } from '../src/logger.js';
import { Metrics } from '../src/metrics/index.js';
import { type ServeRuntime, openEngine } from '../src/runtime.js';
import { createQueuedRuntime } from '../src/runtime-queued.js';
import { type RedisServer, redisAvailability, startRedis } from './helpers/redis.js';
import { makeToyPack } from './helpers/toy.js';
import { shapesPng } from './helpers/web.js';

const redis = redisAvailability();
describe.skipIf(redis.skip)('redelivered events with a Redis queue', () => {
  let server: RedisServer;
  let root: string;
  let packCleanup: () => Promise<void>;
  let config: Config;
  const serves: ServeRuntime[] = [];
  let workerStores: ConversationStores;
  let engine: EngineThread;
  let worker: BullmqWorker;
  const ran: string[] = [];
  const logger = createLogger({ level: 'silent' });

  beforeAll(async () => {
    server = await startRedis();
    root = await mkdtemp(path.join(os.tmpdir(), 'lisa-redeliver-'));
    const pack = await makeToyPack();
    packCleanup = pack.cleanup;
    const defaults = loadConfig({ surfaces, env: {} });
    config = {
      ...defaults,
      model: { ...defaults.model, path: pack.dir, providers: ['cpu'] },
      store: { ...defaults.store, url: server.url },
      queue: { ...defaults.queue, url: server.url, name: 'redeliver-test' },
      render: { format: 'png' },
    };
    serves.push(await createQueuedRuntime(config, logger), await createQueuedRuntime(config, logger));
    workerStores = await openConversationStores(config.store.url, { idleMinutes: config.store.sessionIdleMinutes });
    engine = await openEngine(config, workerStores, new Metrics(), logger);
    const handler = inferenceHandler(engine);
    worker = await startBullmqWorker<InferenceJob, InferenceResult>(config.queue.url, config.queue.name, async (job, context) => {
      ran.push(context.jobId);
      return handler(job, context);
    });
  }, 120_000);

  afterAll(async () => {
    await worker?.close();
    await Promise.all(serves.map((serve) => serve.close()));
    await engine?.close();
    await workerStores?.close();
    await server?.stop();
    await packCleanup?.();
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('answers a Slack message delivered to two serve processes once, and stores one turn', async () => {
    const turn: IncomingTurn = {
      surface: 'slack',
      conversationKey: 'slack:T1:C1:1700000000.000100',
      user: { id: 'U1' },
      channelId: 'C1',
      text: 'What is red?',
      images: [{ kind: 'bytes', data: await shapesPng() }],
      requestId: 'T1-C1-1700000000.000100',
    };
    const [first, second] = await Promise.all(serves.map((serve) => serve.assistant.handle(turn)));
    expect(second.jobId).toBe(first.jobId);
    expect(second.text).toBe(first.text);
    expect(second.segments.map((s) => s.rle)).toEqual(first.segments.map((s) => s.rle));
    expect(second.turnIndex).toBe(first.turnIndex);
    expect(ran).toHaveLength(1);
    const session = await serves[0]!.stores.sessions.get(turn.conversationKey);
    expect(session?.turns).toHaveLength(1);
  }, 60_000);

  it('lets only one serve process claim a redelivered event id', async () => {
    const claims = await Promise.all(serves.map((serve) => serve.assistant.firstDelivery('slack:event:Ev0123', 60_000)));
    expect(claims.sort()).toEqual([false, true]);
  });

  it('has a worker refuse a turn queued for another model pack, saying so', async () => {
    const image = await shapesPng();
    const hash = await serves[0]!.stores.images.put(image);
    const job = serves[0]!.queue.submit({ imageHash: hash, turns: [{ user: 'What is red?' }], pack: 'lisa-7b@0123456789ab' });
    await expect(job.result).rejects.toMatchObject({ code: 'model_pack_invalid', message: expect.stringMatching(/runs model pack toy@.*queued the question for lisa-7b@0123456789ab/) });
  });
});
