/**
 * The Slack surface over the real assistant (engine + sessions + queue over a
 * generated toy pack): every answer is "Sure, it is [SEG]." and the mask is the
 * region of the colour named most recently. Real Bolt in HTTP mode, signed
 * requests, the fake Slack Web API.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AssistantPort, HandleOptions, IncomingTurn } from '../src/assistant/types.js';
import { surfaces } from '../adapters/index.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/logger.js';
import { type Runtime, createRuntime } from '../src/runtime.js';
import { CHANNEL, type Harness, USER, mention, startHarness } from './fakes/slack/harness.js';
import { HEIGHT, WIDTH, tintedShapes, twoShapesPng } from './fakes/slack/images.js';
import { makeToyPack } from './helpers/toy.js';

let runtime: Runtime;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const pack = await makeToyPack();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'lisa-slack-e2e-'));
  const config = loadConfig({
    surfaces,
    env: {
      LISABOT_MODEL_PATH: pack.dir,
      LISABOT_MODEL_PROVIDERS: '["cpu"]',
      LISABOT_STORE_URL: `sqlite://${path.join(dataDir, 'store.sqlite')}`,
      LISABOT_LIMITS_PER_USER_PER_MINUTE: '1000',
      // Lossless overlays: tests compare their pixels exactly.
      LISABOT_RENDER_FORMAT: 'png',
    },
  });
  runtime = await createRuntime(config, createLogger({ level: 'silent' }));
  cleanup = async () => {
    await runtime.close();
    await rm(dataDir, { recursive: true, force: true });
    await pack.cleanup();
  };
});

afterAll(async () => {
  await cleanup?.();
});

/** The real assistant, with a gate in front of handle() and a record of the turns. */
class Gated implements AssistantPort {
  readonly turns: IncomingTurn[] = [];
  private gate: Promise<void> = Promise.resolve();
  constructor(private readonly inner: AssistantPort) {}
  get model() {
    return this.inner.model;
  }
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise((resolve) => {
      release = resolve;
    });
    return () => {
      release();
      this.gate = Promise.resolve();
    };
  }
  async handle(turn: IncomingTurn, options?: HandleOptions) {
    this.turns.push(turn);
    await this.gate;
    return this.inner.handle(turn, options);
  }
  resetConversation = (key: string) => this.inner.resetConversation(key);
  firstDelivery = (key: string, ttlMs: number) => this.inner.firstDelivery(key, ttlMs);
  hasImage = (key: string) => this.inner.hasImage(key);
}

let h: Harness;
let assistant: Gated;
let channel: string;
let seq = 0;

async function start(): Promise<void> {
  assistant = new Gated(runtime.assistant);
  h = await startHarness(assistant);
  // A channel of its own per test: the store (and so the channel conversation) is shared.
  channel = `${CHANNEL}${++seq}`;
}

afterEach(async () => {
  await h?.close();
});

async function mentionWithImage(question: string, eventId: string): Promise<string> {
  const file = h.fake.addFile('shapes.png', await twoShapesPng(), { width: WIDTH, height: HEIGHT });
  const event = mention(h.fake, question, { files: [file], channel });
  await h.sendEvent(event, eventId);
  await h.surface.idle();
  return event.ts as string;
}

describe('slack over the real assistant (toy pack)', () => {
  it('answers a mention in the thread with an overlay of the named shape, and a follow-up moves the mask', async () => {
    await start();
    const ts = await mentionWithImage('which part is red?', 'Ev-e2e-1');
    const [answer] = h.fake.botMessages(channel, ts);
    expect(answer.text).toContain('Sure, it is');
    expect(answer.text).toContain('\u{1F7E6}'); // the first mask's marker: blue, as red would not show on the red shape
    const [first] = h.fake.sharedUploads();
    expect(first).toMatchObject({ channel, threadTs: ts });
    expect(await tintedShapes(first.bytes)).toEqual({ red: true, blue: false });

    const followUp = mention(h.fake, 'and the blue one?', { threadTs: ts, files: [], channel });
    await h.sendEvent(followUp, 'Ev-e2e-2');
    await h.surface.idle();
    const uploads = h.fake.sharedUploads();
    expect(uploads).toHaveLength(2);
    expect(uploads[1].threadTs).toBe(ts);
    expect(await tintedShapes(uploads[1].bytes)).toEqual({ red: false, blue: true });
  });

  it('says how to give an image, in Slack terms, when a mention comes without one', async () => {
    await start();
    const event = mention(h.fake, 'what is this?', { files: [], channel });
    await h.sendEvent(event, 'Ev-e2e-noimage');
    await h.surface.idle();
    const [answer] = h.fake.botMessages(channel, event.ts as string);
    expect(answer.text).toMatch(/no image to look at yet\. Attach an image \(or ask in a thread that has one\)/);
  });

  it('/lisa is acked before the job runs, then answered in the channel', async () => {
    await start();
    await mentionWithImage('red', 'Ev-e2e-3');
    const release = assistant.hold();
    const ack = await h.sendCommand('now the blue one', { channel_id: channel });
    expect(ack.json).toMatchObject({ response_type: 'ephemeral', text: 'Working on it…' });
    expect(h.fake.sharedUploads()).toHaveLength(1);
    release();
    await h.surface.idle();

    const uploads = h.fake.sharedUploads();
    expect(uploads).toHaveLength(2);
    expect(uploads[1]).toMatchObject({ channel, threadTs: undefined });
    expect(await tintedShapes(uploads[1].bytes)).toEqual({ red: false, blue: true });
    const posted = h.fake.botMessages(channel).filter((m) => m.thread_ts === undefined);
    expect(posted[0].text).toContain(`<@${USER}> asked: now the blue one`);
  });

  it('/lisa with no image gives the ephemeral explanation', async () => {
    await start();
    await h.sendCommand('what is this?', { channel_id: channel });
    await h.surface.idle();
    expect(h.fake.responses[0].body).toMatchObject({ response_type: 'ephemeral' });
    expect(String(h.fake.responses[0].body.text)).toContain('no image to work on');
    expect(h.fake.of('chat.postMessage')).toHaveLength(0);
  });

  it('a retried delivery gives one answer', async () => {
    await start();
    const file = h.fake.addFile('shapes.png', await twoShapesPng());
    const event = mention(h.fake, 'red', { files: [file], channel });
    await h.sendEvent(event, 'Ev-e2e-retry');
    await h.sendEvent(event, 'Ev-e2e-retry', { retryNum: 1 });
    await h.surface.idle();
    await h.sendEvent(event, 'Ev-e2e-retry', { retryNum: 2 });
    await h.surface.idle();
    expect(h.fake.of('chat.postMessage')).toHaveLength(1);
    expect(h.fake.sharedUploads()).toHaveLength(1);
  });

  it("a file URL answering Slack's HTML login page names the missing files:read scope", async () => {
    await start();
    const file = h.fake.addFile('shapes.png', await twoShapesPng(), { loginPage: true });
    await h.sendEvent(mention(h.fake, 'red?', { files: [file], channel }), 'Ev-e2e-html');
    await h.surface.idle();
    const [message] = h.fake.botMessages(channel);
    expect(message.text).toContain('files:read');
    expect(h.fake.sharedUploads()).toHaveLength(0);
  });

  it('refuses a file on a host outside slack.fileHosts without sending it the token', async () => {
    await start();
    const file = h.fake.addFile('shapes.png', await twoShapesPng(), { host: 'localhost' });
    await h.sendEvent(mention(h.fake, 'red?', { files: [file], channel }), 'Ev-e2e-host');
    await h.surface.idle();
    expect(h.fake.fileRequests.filter((r) => r.authorization !== undefined)).toHaveLength(0);
    const [message] = h.fake.botMessages(channel);
    expect(message.text).toContain('127.0.0.1'); // the assistant's refusal names the allowed hosts
  });
});
