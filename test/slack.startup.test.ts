/**
 * The Slack surface's edges: request verification (left to Bolt, and kept on),
 * start-up errors that name the variable to fix, and Socket Mode.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { slackCredentials, startSlack } from '../adapters/slack/start.js';
import { surfaces } from '../adapters/index.js';
import { type Config, loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/logger.js';
import { FakeAssistant } from './fakes/slack/assistant.js';
import { CHANNEL, type Harness, SIGNING_SECRET, eventEnvelope, mention, sign, slackEnv, startHarness, waitFor } from './fakes/slack/harness.js';
import { tintedShapes, twoShapesPng } from './fakes/slack/images.js';
import { FakeSlack } from './fakes/slack/server.js';
import { FakeSocketMode } from './fakes/slack/socket.js';

const quiet = () => createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function harness(): Promise<{ h: Harness; assistant: FakeAssistant }> {
  const assistant = new FakeAssistant();
  const h = await startHarness(assistant);
  cleanups.push(() => h.close());
  return { h, assistant };
}

describe('slack: request verification', () => {
  it('rejects a bad signature with 401 and processes nothing', async () => {
    const { h, assistant } = await harness();
    const body = JSON.stringify(eventEnvelope(h.fake, mention(h.fake, 'red?'), 'Ev-forged'));
    const now = Math.floor(Date.now() / 1000);
    const forged = await h.send(body, { signature: sign('not-the-secret', now, body), timestamp: now });
    expect(forged.status).toBe(401);
    const command = await h.send('command=%2Flisa&text=red', { contentType: 'application/x-www-form-urlencoded', signature: 'v0=deadbeef' });
    expect(command.status).toBe(401);
    await h.surface.idle();
    expect(h.fake.calls.map((c) => c.method)).toEqual(['auth.test']);
    expect(assistant.turns).toHaveLength(0);
  });

  it('rejects a stale timestamp with 401, even correctly signed', async () => {
    const { h, assistant } = await harness();
    const body = JSON.stringify(eventEnvelope(h.fake, mention(h.fake, 'red?'), 'Ev-stale'));
    const stale = Math.floor(Date.now() / 1000) - 6 * 60;
    const response = await h.send(body, { timestamp: stale, signature: sign(SIGNING_SECRET, stale, body) });
    expect(response.status).toBe(401);
    await h.surface.idle();
    expect(h.fake.calls.map((c) => c.method)).toEqual(['auth.test']);
    expect(assistant.turns).toHaveLength(0);
  });

  it('answers the url_verification challenge of the Events API setup', async () => {
    const { h } = await harness();
    const response = await h.send(JSON.stringify({ type: 'url_verification', challenge: 'abc123', token: 'x' }));
    expect(response.status).toBe(200);
    expect(response.text).toContain('abc123');
  });
});

describe('slack: start-up', () => {
  const base = async (): Promise<{ fake: FakeSlack; config: Config }> => {
    const fake = await FakeSlack.start();
    cleanups.push(() => fake.close());
    return { fake, config: loadConfig({ surfaces, env: slackEnv(fake) }) };
  };

  it('names the variable a mode is missing', async () => {
    const { config } = await base();
    const socket = { ...config, slack: { ...config.slack, mode: 'socket' as const } };
    expect(() => slackCredentials(socket)).toThrow(/SLACK_APP_TOKEN/);
    const http = { ...config, secrets: { SLACK_BOT_TOKEN: 'xoxb-1' } };
    expect(() => slackCredentials(http)).toThrow(/SLACK_SIGNING_SECRET/);
    expect(() => slackCredentials({ ...config, secrets: {} })).toThrow(/SLACK_BOT_TOKEN/);
    expect(() => slackCredentials({ ...socket, secrets: { SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xoxb-2' } })).toThrow(/xapp-/);
  });

  it('says SLACK_BOT_TOKEN was refused when Slack rejects it', async () => {
    const { config } = await base();
    const wrong = { ...config, secrets: { ...config.secrets, SLACK_BOT_TOKEN: 'xoxb-wrong' } };
    await expect(startSlack({ assistant: new FakeAssistant(), config: wrong, logger: quiet() })).rejects.toThrow(/SLACK_BOT_TOKEN was refused/);
  });
});

describe('slack: Socket Mode', () => {
  it('connects with the app token, acks envelopes and answers mentions', async () => {
    const fake = await FakeSlack.start();
    const socket = new FakeSocketMode(fake);
    cleanups.push(() => fake.close(), () => socket.close());
    const config = loadConfig({ surfaces, env: { ...slackEnv(fake, { LISABOT_SLACK_MODE: 'socket' }), SLACK_SIGNING_SECRET: '', SLACK_APP_TOKEN: fake.appToken } });
    const assistant = new FakeAssistant();
    const surface = await startSlack({ assistant, config, logger: quiet() });
    cleanups.push(() => surface.stop());
    expect(surface.url).toBeUndefined();
    expect(fake.of('apps.connections.open')[0].authorization).toBe(`Bearer ${fake.appToken}`);

    const file = fake.addFile('shapes.png', await twoShapesPng());
    const envelope = socket.sendEvent(eventEnvelope(fake, mention(fake, 'the blue one', { files: [file] }), 'Ev-socket'));
    await waitFor(() => socket.acks.some((a) => a.envelope_id === envelope), 'the envelope ack');
    await waitFor(() => fake.sharedUploads().length > 0, 'the overlay');
    await surface.idle();
    expect(fake.botMessages(CHANNEL)[0].text).toContain('Sure, it is');
    expect(await tintedShapes(fake.sharedUploads()[0].bytes)).toEqual({ red: false, blue: true });
  });
});
