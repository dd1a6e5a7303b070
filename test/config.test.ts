import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfigFile, envVarName, loadConfig } from '../src/config/index.js';
import { UserInputError } from '../src/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lisa-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function yamlFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The config_invalid message of a load that must fail. */
function failure(options: Parameters<typeof loadConfig>[0]): string {
  try {
    loadConfig(options);
  } catch (error) {
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('config_invalid');
    return (error as UserInputError).message;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('loads the defaults from config/default.yaml', () => {
    const config = loadConfig({ env: {} });
    expect(config.web).toEqual({ enabled: true, host: '127.0.0.1', port: 8787 });
    expect(config.model.providers).toEqual(['cuda', 'cpu']);
    expect(config.model.cache.imageBytes).toBe(268435456);
    expect(config.store.url).toBe('sqlite://data/lisa-bot.sqlite');
    expect(config.queue.url).toBe('');
    expect(config.limits.maxQueue).toBe(100);
    expect(config.discord.attachmentHosts).toEqual(['cdn.discordapp.com', 'media.discordapp.net']);
    expect(config.secrets).toEqual({});
    // Naming the default file explicitly is the same as naming none.
    expect(loadConfig({ file: defaultConfigFile, env: {} })).toEqual(config);
  });

  it('names environment variables in upper snake case', () => {
    expect(envVarName(['web', 'port'])).toBe('LISABOT_WEB_PORT');
    expect(envVarName(['discord', 'apiUrl'])).toBe('LISABOT_DISCORD_API_URL');
    expect(envVarName(['limits', 'maxImageBytes'])).toBe('LISABOT_LIMITS_MAX_IMAGE_BYTES');
    expect(envVarName(['model', 'cache', 'imageBytes'])).toBe('LISABOT_MODEL_CACHE_IMAGE_BYTES');
  });

  it('overrides a number, a boolean and a list from the environment', () => {
    const config = loadConfig({
      env: {
        LISABOT_WEB_PORT: '9000',
        LISABOT_WEB_ENABLED: 'false',
        LISABOT_SLACK_THREAD_REPLIES_WITHOUT_MENTION: '1',
        LISABOT_MODEL_PROVIDERS: '["cpu"]',
        LISABOT_MODEL_CACHE_KV_BYTES: '1024',
        LISABOT_LIMITS_ALLOWED_USERS: '["discord:42", "slack:U1"]',
        LISABOT_QUEUE_URL: 'redis://localhost:6379/1',
      },
    });
    expect(config.web.port).toBe(9000);
    expect(config.web.enabled).toBe(false);
    expect(config.slack.threadRepliesWithoutMention).toBe(true);
    expect(config.model.providers).toEqual(['cpu']);
    expect(config.model.cache.kvBytes).toBe(1024);
    expect(config.limits.allowedUsers).toEqual(['discord:42', 'slack:U1']);
    expect(config.queue.url).toBe('redis://localhost:6379/1');
  });

  it('lays a user file over the defaults, and the environment over both', () => {
    const file = yamlFile('user.yaml', 'web:\n  port: 8000\nlimits:\n  maxQueue: 5\n');
    const config = loadConfig({ file, env: { LISABOT_LIMITS_MAX_QUEUE: '7' } });
    expect(config.web).toEqual({ enabled: true, host: '127.0.0.1', port: 8000 });
    expect(config.limits.maxQueue).toBe(7);
    expect(config.limits.maxImageBytes).toBe(20000000);
  });

  it('names the key and the variable when an environment value has the wrong type', () => {
    const message = failure({ env: { LISABOT_WEB_PORT: 'eighty' } });
    expect(message).toContain('web.port');
    expect(message).toContain('LISABOT_WEB_PORT');
    expect(message).toMatch(/expected a number/);
    expect(failure({ env: { LISABOT_WEB_ENABLED: 'yes' } })).toMatch(/web\.enabled.*LISABOT_WEB_ENABLED.*true, false, 1 or 0/);
    expect(failure({ env: { LISABOT_LIMITS_MAX_QUEUE: '1.5' } })).toMatch(/limits\.maxQueue.*LISABOT_LIMITS_MAX_QUEUE.*whole number/);
    expect(failure({ env: { LISABOT_MODEL_PROVIDERS: '["gpu"]' } })).toMatch(/model\.providers\[0\].*LISABOT_MODEL_PROVIDERS.*cuda, tensorrt, cpu/);
  });

  it('refuses a list that is not JSON, naming the variable', () => {
    const message = failure({ env: { LISABOT_DISCORD_ATTACHMENT_HOSTS: 'cdn.example.com' } });
    expect(message).toMatch(/discord\.attachmentHosts.*LISABOT_DISCORD_ATTACHMENT_HOSTS.*JSON array/);
  });

  it('names the key and the file when a file value has the wrong type', () => {
    const file = yamlFile('bad-type.yaml', 'web:\n  port: high\n');
    expect(failure({ file, env: {} })).toMatch(/web\.port \(in .*bad-type\.yaml\): expected a number, got "high"/);
  });

  it('refuses unknown keys in the file, with a hint', () => {
    const file = yamlFile('typo.yaml', 'web:\n  prot: 80\nwebb:\n  port: 1\n');
    const message = failure({ file, env: {} });
    expect(message).toMatch(/web\.prot \(in .*typo\.yaml\): unknown key; did you mean web\.port\?/);
    expect(message).toMatch(/webb .*unknown key/);
  });

  it('refuses unknown LISABOT_ variables', () => {
    expect(failure({ env: { LISABOT_WEB_PROT: '80' } })).toMatch(/LISABOT_WEB_PROT is not a configuration variable; did you mean LISABOT_WEB_PORT\?/);
    expect(failure({ env: { LISABOT_DISCORD_TOKEN: 'x' } })).toMatch(/set DISCORD_TOKEN instead/);
  });

  it('refuses secrets in the file and points at the environment variable', () => {
    const file = yamlFile('secret.yaml', 'discord:\n  token: abc\nslack:\n  signingSecret: s\n');
    const message = failure({ file, env: {} });
    expect(message).toMatch(/discord\.token .*set the DISCORD_TOKEN environment variable/);
    expect(message).toMatch(/slack\.signingSecret .*SLACK_SIGNING_SECRET/);
    expect(message).not.toContain('abc');
  });

  it('reads secrets from the environment only, and keeps them out of logs', () => {
    const config = loadConfig({ env: { DISCORD_TOKEN: 'tok', SLACK_BOT_TOKEN: 'xoxb', SLACK_APP_TOKEN: 'xapp' } });
    expect(config.secrets.DISCORD_TOKEN).toBe('tok');
    expect(config.secrets.SLACK_SIGNING_SECRET).toBeUndefined();
    expect(JSON.stringify(config)).not.toMatch(/tok|xoxb|xapp/);
  });

  it('refuses a Slack mode whose credential is missing', () => {
    expect(failure({ env: { SLACK_BOT_TOKEN: 'xoxb' } })).toMatch(/slack\.mode .*SLACK_APP_TOKEN/);
    expect(failure({ env: { SLACK_BOT_TOKEN: 'xoxb', LISABOT_SLACK_MODE: 'http' } })).toMatch(/SLACK_SIGNING_SECRET/);
  });

  it('reports a missing file and a YAML syntax error', () => {
    expect(failure({ file: path.join(dir, 'missing.yaml'), env: {} })).toMatch(/missing\.yaml does not exist/);
    const file = yamlFile('syntax.yaml', 'web: [1\n');
    expect(failure({ file, env: {} })).toMatch(/syntax\.yaml: .*line/);
  });
});
