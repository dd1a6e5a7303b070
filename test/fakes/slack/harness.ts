/**
 * Starts the real Slack surface in HTTP mode against FakeSlack, and sends it
 * Slack-signed requests (v0 HMAC-SHA256 over `v0:<timestamp>:<body>`).
 */
import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { type SlackSurface, startSlack } from '../../../adapters/slack/start.js';
import type { AssistantPort } from '../../../src/assistant/types.js';
import { surfaces } from '../../../adapters/index.js';
import { type Config, loadConfig } from '../../../src/config/index.js';
import { createLogger } from '../../../src/logger.js';
import { FakeSlack, type FakeFile } from './server.js';

export const SIGNING_SECRET = 'test-signing-secret-0123456789';
export const CHANNEL = 'C0CHAN001';
export const USER = 'U0USER001';

export interface SendOptions {
  /** Seconds since the epoch; now by default. */
  timestamp?: number;
  /** Overrides the computed signature. */
  signature?: string;
  retryNum?: number;
  contentType?: string;
}

export interface Harness {
  fake: FakeSlack;
  surface: SlackSurface;
  config: Config;
  logs: string[];
  /** POSTs a signed body to /slack/events. */
  send(body: string, options?: SendOptions): Promise<{ status: number; text: string }>;
  sendEvent(event: Record<string, unknown>, eventId: string, options?: SendOptions): Promise<{ status: number; text: string }>;
  sendCommand(text: string, extra?: Record<string, string>): Promise<{ status: number; text: string; json?: Record<string, unknown> }>;
  close(): Promise<void>;
}

export function slackEnv(fake: FakeSlack, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    SLACK_BOT_TOKEN: fake.botToken,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    LISABOT_SLACK_MODE: 'http',
    LISABOT_SLACK_PORT: '0',
    LISABOT_SLACK_API_URL: fake.apiUrl,
    LISABOT_SLACK_FILE_HOSTS: '["127.0.0.1"]',
    LISABOT_SLACK_THREAD_REPLIES_WITHOUT_MENTION: 'true',
    LISABOT_WEB_ENABLED: 'false',
    ...extra,
  };
}

export function sign(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export async function startHarness(assistant: AssistantPort, env: Record<string, string> = {}): Promise<Harness> {
  const fake = await FakeSlack.start();
  const config = loadConfig({ surfaces, env: slackEnv(fake, env) });
  const logs: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const surface = await startSlack({ assistant, config, logger });
  const url = surface.url!.replace('localhost', '127.0.0.1');

  const send = async (body: string, options: SendOptions = {}) => {
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': options.contentType ?? 'application/json',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': options.signature ?? sign(SIGNING_SECRET, timestamp, body),
    };
    if (options.retryNum !== undefined) {
      headers['x-slack-retry-num'] = String(options.retryNum);
      headers['x-slack-retry-reason'] = 'http_timeout';
    }
    const response = await fetch(url, { method: 'POST', headers, body });
    return { status: response.status, text: await response.text() };
  };

  return {
    fake,
    surface,
    config,
    logs,
    send,
    sendEvent: (event, eventId, options) => send(JSON.stringify(eventEnvelope(fake, event, eventId)), options),
    async sendCommand(text, extra = {}) {
      const body = new URLSearchParams({
        token: 'legacy-verification-token',
        team_id: fake.teamId,
        team_domain: 'test',
        channel_id: CHANNEL,
        channel_name: 'general',
        user_id: USER,
        user_name: 'ada',
        command: '/lisa',
        text,
        api_app_id: 'A0APP0001',
        response_url: fake.responseUrl(),
        trigger_id: `1337.42.${Math.random().toString(16).slice(2)}`,
        ...extra,
      }).toString();
      const result = await send(body, { contentType: 'application/x-www-form-urlencoded' });
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(result.text) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      return { ...result, json };
    },
    async close() {
      await surface.stop();
      await fake.close();
    },
  };
}

/** The Events API body around an event. */
export function eventEnvelope(fake: FakeSlack, event: Record<string, unknown>, eventId: string): Record<string, unknown> {
  return {
    token: 'legacy-verification-token',
    team_id: fake.teamId,
    api_app_id: 'A0APP0001',
    event: { event_ts: event.ts, ...event },
    type: 'event_callback',
    event_id: eventId,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ team_id: fake.teamId, user_id: fake.botUserId, is_bot: true, is_enterprise_install: false }],
  };
}

/** An app_mention event as Slack sends it (files present unless `files: undefined`). */
export function mention(fake: FakeSlack, text: string, options: { ts?: string; threadTs?: string; files?: FakeFile[]; user?: string; channel?: string } = {}): Record<string, unknown> {
  const event: Record<string, unknown> = {
    type: 'app_mention',
    user: options.user ?? USER,
    text: `<@${fake.botUserId}> ${text}`,
    ts: options.ts ?? fake.nextTs(),
    channel: options.channel ?? CHANNEL,
  };
  if (options.threadTs !== undefined) event.thread_ts = options.threadTs;
  if (options.files !== undefined) event.files = options.files;
  return event;
}

/** Polls until `check` returns a truthy value (behaviour, not timing: the limit is only a safety net). */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, limitMs = 30_000): Promise<NonNullable<T>> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
