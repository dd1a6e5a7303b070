/**
 * The web chat under test: its registry entry started on a free port with small limits, over the
 * real runtime on a generated toy pack (end to end) or over a FakeAssistant
 * (to hold the queue or to fail on purpose), and an HTTP client that keeps its
 * session cookie like a browser does.
 */
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { web as webSurface } from '../../adapters/web/index.js';
import type { SurfaceContext } from '../../src/assistant/surface.js';
import type { AssistantPort, HandleOptions, IncomingTurn, Reply } from '../../src/assistant/types.js';
import { surfaces } from '../../adapters/index.js';
import { type Config, loadConfig } from '../../src/config/index.js';
import type { ImageStore } from '../../src/conversation/index.js';
import { createLogger } from '../../src/logger.js';
import { createRuntime } from '../../src/runtime.js';
import { FakeAssistant } from '../fakes/assistant.js';
import { drawShapes, encodeImage, makeToyPack } from './toy.js';

export interface TestLimits {
  maxImageBytes: number;
  maxImagePixels: number;
  maxQuestionChars: number;
}

/** Small enough that the refusals are cheap to provoke, big enough for the test images. */
export const TEST_LIMITS: TestLimits = { maxImageBytes: 200_000, maxImagePixels: 1_000_000, maxQuestionChars: 500 };

export interface TestWeb {
  url: string;
  config: Config;
  assistant: AssistantPort;
  /** Every turn the web chat handed to the assistant, in order. */
  received: IncomingTurn[];
  /** The real image store (startToyWeb only). */
  images?: ImageStore;
  /**
   * startToyWeb only: stops the web chat and starts a new one on the same
   * port over the same runtime and stores, as a page sees a server restart.
   */
  restartWeb?(): Promise<void>;
  stop(): Promise<void>;
}

/** Passes everything through to `inner`, noting each turn handed in. */
function recording(inner: AssistantPort, received: IncomingTurn[]): AssistantPort {
  return {
    handle(turn: IncomingTurn, options?: HandleOptions): Promise<Reply> {
      received.push(turn);
      return inner.handle(turn, options);
    },
    resetConversation: (key) => inner.resetConversation(key),
    firstDelivery: (key, ttlMs) => inner.firstDelivery(key, ttlMs),
    hasImage: (key) => inner.hasImage(key),
    history: inner.history && ((key) => inner.history!(key)),
    pastImage: inner.pastImage && ((key, index, which) => inner.pastImage!(key, index, which)),
    get model() {
      return inner.model;
    },
  };
}

export function testConfig(limits: TestLimits = TEST_LIMITS): Config {
  const base = loadConfig({ surfaces, env: {} });
  return {
    ...base,
    web: { ...base.web, host: '127.0.0.1', port: 0 },
    // Lossless overlays: tests compare their pixels exactly.
    render: { format: 'png' },
    limits: { ...base.limits, ...limits, perUserPerMinute: 1000 },
  };
}

async function serveOver(
  assistant: AssistantPort,
  config: Config,
  received: IncomingTurn[] = [],
  health: Pick<SurfaceContext, 'metrics' | 'readiness'> = {},
): Promise<TestWeb> {
  const surface = await webSurface.start({ assistant: recording(assistant, received), config, logger: createLogger({ level: 'silent' }), ...health });
  return { url: surface.url!.replace(/\/$/, ''), config, assistant, received, stop: () => surface.stop() };
}

/** The web chat over a FakeAssistant (a new one with the test limits unless given). */
export async function startTestWeb(options: { assistant?: AssistantPort; limits?: TestLimits } = {}): Promise<TestWeb> {
  const limits = options.limits ?? TEST_LIMITS;
  return serveOver(options.assistant ?? new FakeAssistant(limits), testConfig(limits));
}

/**
 * The web chat end to end, as `lisa-bot serve` wires it: the runtime (engine
 * on CPU, SQLite sessions, in-process queue, the real assistant) over a toy
 * pack generated in a temp folder.
 */
export async function startToyWeb(
  limits: TestLimits = TEST_LIMITS,
  options: { wrap?: (assistant: AssistantPort) => AssistantPort } = {},
): Promise<TestWeb> {
  const pack = await makeToyPack();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-web-'));
  const cleanup = () => Promise.all([pack.cleanup(), rm(dir, { recursive: true, force: true })]);
  try {
    const base = testConfig(limits);
    const config: Config = {
      ...base,
      model: { ...base.model, path: pack.dir, providers: ['cpu'] },
      store: { ...base.store, url: `sqlite://${path.join(dir, 'sessions.sqlite')}` },
    };
    const runtime = await createRuntime(config, createLogger({ level: 'silent' }));
    try {
      const assistant = options.wrap ? options.wrap(runtime.assistant) : runtime.assistant;
      const health = { metrics: runtime.metrics, readiness: runtime.readiness };
      let web = await serveOver(assistant, config, [], health);
      const port = Number(new URL(web.url).port);
      return {
        ...web,
        images: runtime.stores.images,
        async restartWeb() {
          await web.stop();
          web = await serveOver(assistant, { ...config, web: { ...config.web, port } }, web.received, health);
        },
        async stop() {
          await web.stop();
          await runtime.close();
          await cleanup();
        },
      };
    } catch (error) {
      await runtime.close();
      throw error;
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** startToyWeb for the tests of one file: started before them, stopped after them. */
export function toyWebForFile(): TestWeb {
  const web = {} as TestWeb;
  beforeAll(async () => void Object.assign(web, await startToyWeb()));
  afterAll(() => web.stop?.());
  return web;
}

/** A red rectangle and a blue circle on white, 96x64, as PNG; the areas are the toy model's masks. */
export async function shapesPng(): Promise<Buffer> {
  return encodeImage(
    drawShapes(96, 64, [
      { colour: 'red', kind: 'rect', x: 8, y: 10, w: 30, h: 20 },
      { colour: 'blue', kind: 'rect', x: 50, y: 24, w: 36, h: 30 },
    ]),
    'png',
  );
}
export const RED_AREA = 30 * 20;
export const BLUE_AREA = 36 * 30;

/** fetch with a cookie jar of one cookie: the session. */
export class Client {
  cookie?: string;

  constructor(readonly base: string) {}

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookie) headers.set('cookie', this.cookie);
    const response = await fetch(this.base + path, { ...init, headers, redirect: 'manual' });
    const set = response.headers.get('set-cookie');
    if (set) this.cookie = set.split(';')[0];
    return response;
  }

  get sessionId(): string | undefined {
    return this.cookie?.split('=')[1];
  }

  async json<T = any>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T; response: Response }> {
    const response = await this.fetch(path, init);
    return { status: response.status, body: (await response.json()) as T, response };
  }

  /** POST /api/turns with a question and an optional image file. */
  ask(question: string | undefined, image?: { data: Uint8Array; name?: string; type?: string }) {
    const form = new FormData();
    if (question !== undefined) form.append('question', question);
    if (image) form.append('image', new Blob([image.data], { type: image.type ?? 'image/png' }), image.name ?? 'image.png');
    return this.json('/api/turns', { method: 'POST', body: form });
  }

  /** Polls a turn until it is done or failed. */
  async settle(turnId: string): Promise<any> {
    for (;;) {
      const { status, body } = await this.json(`/api/turns/${turnId}`);
      if (status !== 200) throw new Error(`GET /api/turns/${turnId} answered ${status}: ${JSON.stringify(body)}`);
      if (body.state === 'done' || body.state === 'error') return body;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Asks and waits until the turn is done or failed; the ask itself must be accepted (202). */
  async answered(question: string, image?: { data: Uint8Array; name?: string }): Promise<{ turnId: string; instance: string; view: any }> {
    const created = await this.ask(question, image);
    if (created.status !== 202) throw new Error(`POST /api/turns answered ${created.status}: ${JSON.stringify(created.body)}`);
    return { ...created.body, view: await this.settle(created.body.turnId) };
  }
}

/**
 * Whether the browser tests run. Without Debian's chromium they are skipped
 * with a printed reason, except in CI, where a skipped browser suite would
 * hide an untested page: there it fails.
 */
export const CHROMIUM = '/usr/bin/chromium';
export function chromiumAvailability(): { skip: boolean; reason?: string } {
  try {
    accessSync(CHROMIUM, constants.X_OK);
    return { skip: false };
  } catch {
    if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is required in CI (apt install chromium)`);
    const reason = `${CHROMIUM} is not installed (apt install chromium); skipping the browser tests`;
    console.warn(reason);
    return { skip: true, reason };
  }
}
