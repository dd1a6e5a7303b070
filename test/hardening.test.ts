/**
 * Issue 17 beyond the CLI: an engine promise's failure is its turn's error,
 * messages fit their surface, and the tooling tells the truth (npm, logs,
 * skipped tests).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkQuestion } from '../src/assistant/limits.js';
import { Engine } from '../src/engine/engine.js';
import { isUserInputError } from '../src/errors.js';
import { createLogger } from '../src/logger.js';
import { type ToyAssistant, createToyAssistant } from './helpers/assistant.js';
import { BIN } from './helpers/cli.js';
import { Client, startTestWeb } from './helpers/web.js';
import { ImagesInMemory } from '../src/engine/images-in-memory.js';

const files = new ImagesInMemory();

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;

describe('engine promises (item 2)', () => {
  it('a SAM encoder failure is the turn\'s error, never an unhandled rejection', async () => {
    const toy = await createToyAssistant();
    const engine = await Engine.open(toy.config.model.path, { images: files, providers: ['cpu'] });
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      engine.pack.sessions.samImageEncoder.run = () => Promise.reject(new Error('SAM encoder failed'));
      // The LLM slower than SAM's failure, as with a real model: the failure comes while nothing awaits it.
      const decoder = engine.pack.sessions.decoder;
      const decode = decoder.run.bind(decoder);
      decoder.run = (async (...args: Parameters<typeof decode>) => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        return decode(...args);
      }) as typeof decoder.run;
      const image = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#ff0000' } }).png().toBuffer();
      await expect(engine.chat({ imageHash: files.add(image), turns: [{ user: 'segment the red thing' }] })).rejects.toThrow('SAM encoder failed');
      // The engine goes on: the next turn about the image runs (and fails the same way, as its own error).
      await expect(engine.chat({ imageHash: files.add(image), turns: [{ user: 'and again' }] })).rejects.toThrow('SAM encoder failed');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
      await engine.close();
      await toy.close();
    }
  });
});

describe('wording (item 9)', () => {
  let toy: ToyAssistant;
  beforeAll(async () => {
    toy = await createToyAssistant();
  }, 120_000);
  afterAll(() => toy.close());

  async function noImageMessage(noImageHint?: string): Promise<string> {
    const error = await toy.assistant
      .handle({ surface: 'web', conversationKey: 'web:nothing-yet', user: { id: 'u' }, text: 'what is this?', images: [], noImageHint })
      .catch((e: unknown) => e);
    expect(isUserInputError(error)).toBe(true);
    return (error as Error).message;
  }

  // Each surface's words are checked where it builds its turns (web-api, cli, discord, slack.e2e tests).
  it('"no image yet" says how to give one in the words of the surface that asked', async () => {
    expect(await noImageMessage('Tap the paperclip.')).toMatch(/no image to look at yet\. Tap the paperclip\.$/);
    expect(await noImageMessage()).toMatch(/no image to look at yet\. Attach an image and ask again\.$/);
  });

  const limits = { maxQuestionChars: 2000, perUserPerMinute: 6, allowedUsers: [], allowedChannels: [] };

  it('counts characters, not UTF-16 units', () => {
    expect(checkQuestion('🍎'.repeat(1500), limits)).toHaveLength(3000);
    expect(() => checkQuestion('🍎'.repeat(2001), limits)).toThrow('(this one has 2,001)');
  });

  it('one "too long" message, on the web as in the assistant', async () => {
    const web = await startTestWeb();
    try {
      const huge = await new Client(web.url).ask('a'.repeat(5000));
      expect(huge.status).toBe(400);
      const assistant = (() => {
        try {
          checkQuestion('a'.repeat(501), { ...limits, maxQuestionChars: 500 });
        } catch (error) {
          return (error as Error).message;
        }
      })();
      expect(huge.body.error.message).toBe('The question is too long: the limit is 500 characters. Please shorten it.');
      expect(assistant).toBe('The question is too long: the limit is 500 characters (this one has 501). Please shorten it.');
    } finally {
      await web.stop();
    }
  });

  it('"an application/json request"', async () => {
    const web = await startTestWeb();
    try {
      const { status, body } = await new Client(web.url).json('/api/conversation/reset', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
      expect(status).toBe(415);
      expect(body.error.message).toBe('Expected an application/json request, got text/plain.');
    } finally {
      await web.stop();
    }
  });
});

describe('tooling (item 10)', () => {
  it('npm commands print no warning about the project config', async () => {
    const { stderr } = await run('npm', ['pkg', 'get', 'name'], { cwd: root });
    expect(stderr).not.toMatch(/Unknown project config/);
    // …and onnxruntime-node's CUDA download is still skipped, by npm's own policy.
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    expect(pkg.allowScripts['onnxruntime-node']).toBe(false);
  });

  it('logs are readable lines on a terminal and JSON elsewhere', () => {
    const saved = process.env.LOG_FORMAT;
    delete process.env.LOG_FORMAT;
    try {
      const written = (tty: boolean) => {
        const stream = Object.assign(new PassThrough(), { isTTY: tty });
        let text = '';
        stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
        createLogger({ level: 'info', destination: stream }).info({ provider: 'cpu', token: 'secret-value' }, 'model pack loaded');
        return text;
      };
      const pretty = written(true);
      expect(pretty).toMatch(/INFO.*model pack loaded/);
      expect(pretty).not.toContain('secret-value');
      expect(() => JSON.parse(pretty)).toThrow();
      expect(JSON.parse(written(false))).toMatchObject({ msg: 'model pack loaded', provider: 'cpu', token: '[redacted]' });
    } finally {
      if (saved !== undefined) process.env.LOG_FORMAT = saved;
    }
  });

  it('lisa-bot on a terminal logs readable lines, engine thread included; piped, or as a child of one, JSON', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-logs-'));
    try {
      await run(process.execPath, [BIN, 'models', 'toy', '--out', path.join(dir, 'toy')]);
      const image = path.join(dir, 'red.png');
      await sharp({ create: { width: 32, height: 32, channels: 3, background: '#ff0000' } }).png().toFile(image);
      const args = ['ask', '--session', 'logs', '--model', path.join(dir, 'toy'), '--image', image, 'red'];
      const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'info', LISABOT_STORE_URL: `sqlite://${path.join(dir, 's.sqlite')}` };
      delete env.LOG_FORMAT;
      // The parent's pid: what a child of a lisa-bot on a terminal inherits.
      const piped = await run(process.execPath, [BIN, ...args], { env: { ...env, LOG_PRETTY_PID: String(process.pid) } }).catch((e: { stderr: string }) => e);
      const lines = piped.stderr.trim().split('\n');
      expect(lines.length).toBeGreaterThan(1);
      for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
      if (!existsSync('/usr/bin/script')) return;
      // util-linux's script(1) gives the command a terminal.
      const command = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ');
      const tty = await run('/usr/bin/script', ['-qec', command, '/dev/null'], { env }).catch((e: { stdout: string }) => e);
      expect(tty.stdout).toMatch(/INFO.*model pack loaded/);
      expect(tty.stdout).not.toMatch(/"level":/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a run without redis-server ends by saying what was skipped and why', async () => {
    // A PATH with node and nothing else: no redis-server.
    const bin = await mkdtemp(path.join(os.tmpdir(), 'lisa-path-'));
    try {
      await symlink(process.execPath, path.join(bin, 'node'));
      const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
      const { stdout } = await run(process.execPath, [vitest, 'run', '--config', 'test/vitest.config.ts', 'test/sessions.test.ts'], {
        cwd: root,
        env: { ...process.env, PATH: bin, CI: '' },
      });
      const summary = stdout.slice(stdout.lastIndexOf('Tests'));
      expect(summary).toMatch(/Skipped 7 tests for want of a tool on this machine:\n {2}test\/sessions\.test\.ts: 7 skipped: redis-server is not installed/);
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });
});
