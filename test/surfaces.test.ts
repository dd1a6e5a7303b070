/**
 * The registry of chat surfaces (adapters/index.ts) as `lisa-bot serve` uses
 * it: entries that load no platform SDK until they start, their secrets kept
 * out of logs, and serve starting what is switched on.
 */
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { surfaceSecretKeys, surfaces } from '../adapters/index.js';
import { loadConfig } from '../src/config/index.js';
import { createLogger } from '../src/logger.js';
import { BIN, cli } from './helpers/cli.js';
import { makeToyPack } from './helpers/toy.js';

// Which platform SDKs were imported, by anything: the registry must import none.
const loaded = vi.hoisted(() => new Set<string>());
vi.mock('discord.js', () => {
  loaded.add('discord.js');
  return {};
});
vi.mock('@slack/bolt', () => {
  loaded.add('@slack/bolt');
  return {};
});

const noSecrets = { DISCORD_TOKEN: '', SLACK_BOT_TOKEN: '', SLACK_APP_TOKEN: '', SLACK_SIGNING_SECRET: '' };

describe('the registry', () => {
  it('loads no platform SDK: an entry loads its own when it starts', async () => {
    expect(surfaces.map((s) => s.name)).toEqual(['web', 'discord', 'slack']);
    const discord = surfaces.find((s) => s.name === 'discord')!;
    const config = loadConfig({ surfaces, env: { DISCORD_TOKEN: 'x' } });
    expect(discord.enabled(config)).toBe(true);
    expect([...loaded]).toEqual([]);
    const logger = createLogger({ level: 'silent' });
    // The stand-in SDK has nothing in it, so the start fails; what matters is that it was loaded then.
    await discord.start({ assistant: undefined as never, config, logger }).catch(() => undefined);
    expect([...loaded]).toEqual(['discord.js']);
  });

  it('switches a surface on from its config: the web chat by web.enabled, the others by their tokens', () => {
    const on = (env: NodeJS.ProcessEnv) => {
      const config = loadConfig({ surfaces, env });
      return surfaces.filter((s) => s.enabled(config)).map((s) => s.name);
    };
    expect(on({})).toEqual(['web']);
    expect(on({ LISABOT_WEB_ENABLED: 'false', SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' })).toEqual(['slack']);
    expect(on({ DISCORD_TOKEN: 't', SLACK_BOT_TOKEN: 'xoxb-1', SLACK_APP_TOKEN: 'xapp-1' })).toEqual(['web', 'discord', 'slack']);
  });

  it("keeps every surface's secrets out of log lines, at any of the first three levels", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const logger = createLogger({ level: 'info', destination, redact: surfaceSecretKeys });
    logger.info(
      { DISCORD_TOKEN: 'd-secret', options: { botToken: 'b-secret', signingSecret: 's-secret' }, a: { b: { SLACK_APP_TOKEN: 'a-secret' } }, token: 't-secret' },
      'starting',
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/secret"/);
    expect(JSON.parse(lines[0]!)).toMatchObject({ DISCORD_TOKEN: '[redacted]', options: { botToken: '[redacted]' }, token: '[redacted]' });
  });
});

describe('lisa-bot serve', () => {
  let toy: Awaited<ReturnType<typeof makeToyPack>>;
  beforeAll(async () => {
    toy = await makeToyPack();
  });
  afterAll(async () => {
    await toy?.cleanup();
  });

  it('refuses to start with no surface switched on, naming what switches each on, before loading the model', async () => {
    const result = await cli(['serve'], { ...noSecrets, LISABOT_WEB_ENABLED: 'false', LISABOT_MODEL_PATH: '/nonexistent' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/nothing to serve/);
    for (const hint of ['web.enabled is true', 'DISCORD_TOKEN is set', 'SLACK_BOT_TOKEN is set']) expect(result.stderr).toContain(hint);
  });

  it('starts the surfaces that are switched on, serves until SIGTERM, then stops them', async () => {
    const env = {
      ...process.env,
      ...noSecrets,
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'info',
      LISABOT_WEB_PORT: '0',
      LISABOT_MODEL_PATH: toy.dir,
      LISABOT_MODEL_PROVIDERS: '["cpu"]',
      LISABOT_STORE_URL: `sqlite://${toy.dir}/sessions.sqlite`,
    };
    const child = spawn(process.execPath, [BIN, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const ready = /"msg":"web ready at (http:\/\/[^"]+)"/.exec(stderr);
        if (ready) resolve(ready[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited (${code}) before it was ready:\n${stderr}`)));
    });
    try {
      const health = await fetch(new URL('/healthz', url));
      expect(await health.json()).toEqual({ ok: true });
    } finally {
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
    expect(stderr).not.toMatch(/discord ready|slack ready/);
  });
});
