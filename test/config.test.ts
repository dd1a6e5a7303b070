import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { surfaces } from '../adapters/index.js';
import { type LoadConfigOptions, type SurfaceConfig, defaultConfigFile, envVarName, fields, loadConfig } from '../src/config/index.js';
import { UserInputError } from '../src/errors.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'lisa-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A made-up fourth surface, as an adapter would describe it: nothing in the core names it. */
const carrierPigeon: SurfaceConfig = {
  name: 'pigeon',
  section: fields.section({ loft: fields.nonEmpty(), birds: fields.int(1) }),
  secrets: ['PIGEON_TOKEN'],
  check: (settings: { birds: number }, secrets, origin) =>
    secrets.PIGEON_TOKEN && settings.birds > 10 ? [`${origin('birds')} is more birds than one token may fly`] : [],
};

function yamlFile(name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The config_invalid message of a load that must fail (the registry's surfaces unless told). */
function failure(options: Partial<LoadConfigOptions>): string {
  try {
    loadConfig({ surfaces, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(UserInputError);
    expect((error as UserInputError).code).toBe('config_invalid');
    return (error as UserInputError).message;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('loads config/default.yaml as it is, for every surface of the registry', () => {
    const config = loadConfig({ surfaces, env: {} });
    for (const surface of surfaces) expect(surface.section.safeParse(config[surface.name as keyof typeof config]).success).toBe(true);
    expect(config.secrets).toEqual({});
    // Naming the default file explicitly is the same as naming none.
    expect(loadConfig({ surfaces, file: defaultConfigFile, env: {} })).toEqual(config);
  });

  it('names environment variables in upper snake case', () => {
    expect(envVarName(['web', 'port'])).toBe('LISABOT_WEB_PORT');
    expect(envVarName(['discord', 'apiUrl'])).toBe('LISABOT_DISCORD_API_URL');
    expect(envVarName(['limits', 'maxImageBytes'])).toBe('LISABOT_LIMITS_MAX_IMAGE_BYTES');
    expect(envVarName(['model', 'cache', 'imageBytes'])).toBe('LISABOT_MODEL_CACHE_IMAGE_BYTES');
  });

  it('overrides a number, a boolean and a list from the environment', () => {
    const config = loadConfig({
      surfaces,
      env: {
        LISABOT_WEB_PORT: '9000',
        LISABOT_WEB_ENABLED: 'false',
        LISABOT_SLACK_THREAD_REPLIES_WITHOUT_MENTION: '1',
        LISABOT_MODEL_PROVIDERS: '["cpu"]',
        LISABOT_MODEL_CACHE_KV_BYTES: '1024',
        LISABOT_LIMITS_ALLOWED_USERS: '["discord:42", "slack:U1"]',
        LISABOT_QUEUE_URL: 'redis://localhost:6379/1',
        LISABOT_STORE_URL: 'redis://localhost:6379/1',
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
    const config = loadConfig({ surfaces, file, env: { LISABOT_LIMITS_MAX_QUEUE: '7' } });
    const defaults = loadConfig({ surfaces, env: {} });
    // What neither names keeps its default.
    expect(config.web).toEqual({ ...defaults.web, port: 8000 });
    expect(config.limits).toEqual({ ...defaults.limits, maxQueue: 7 });
  });

  it('refuses a Redis job queue beside a store the workers cannot reach', () => {
    const message = failure({ env: { LISABOT_QUEUE_URL: 'redis://localhost:6379/0' } });
    expect(message).toMatch(/queue\.url \(from LISABOT_QUEUE_URL=.*\): a Redis job queue needs a shared store/);
    expect(message).toContain('store.url');
    expect(message).toContain('sqlite://data/lisa-bot.sqlite');
  });

  it('names the key and the variable when an environment value has the wrong type', () => {
    const message = failure({ env: { LISABOT_WEB_PORT: 'eighty' } });
    expect(message).toContain('web.port');
    expect(message).toContain('LISABOT_WEB_PORT');
    expect(message).toMatch(/expected a number/);
    expect(failure({ env: { LISABOT_WEB_ENABLED: 'yes' } })).toMatch(/web\.enabled.*LISABOT_WEB_ENABLED.*true, false, 1 or 0/);
    expect(failure({ env: { LISABOT_LIMITS_MAX_QUEUE: '1.5' } })).toMatch(/limits\.maxQueue.*LISABOT_LIMITS_MAX_QUEUE.*whole number/);
    expect(failure({ env: { LISABOT_MODEL_PROVIDERS: '["gpu"]' } })).toMatch(/model\.providers\[0\].*LISABOT_MODEL_PROVIDERS.*expected one of .*cpu/);
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
    const config = loadConfig({ surfaces, env: { DISCORD_TOKEN: 'tok', SLACK_BOT_TOKEN: 'xoxb', SLACK_APP_TOKEN: 'xapp' } });
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

describe('loadConfig with the surfaces it is given', () => {
  const withPigeon = [...surfaces, carrierPigeon];
  const pigeonYaml = () => yamlFile('pigeon.yaml', 'pigeon:\n  loft: roof\n  birds: 3\n');

  it("reads a surface's section from the file and the environment, and its secrets from the environment", () => {
    const config = loadConfig({ surfaces: withPigeon, file: pigeonYaml(), env: { LISABOT_PIGEON_BIRDS: '4', PIGEON_TOKEN: 'coo' } });
    expect((config as unknown as Record<string, unknown>).pigeon).toEqual({ loft: 'roof', birds: 4 });
    expect(config.secrets.PIGEON_TOKEN).toBe('coo');
    expect(JSON.stringify(config)).not.toContain('coo');
  });

  it("takes a surface's defaults from its own defaults file, under the user's file and the environment", () => {
    const defaultsFile = yamlFile('pigeon-defaults.yaml', '# the pigeon surface\nloft: barn\nbirds: 2\n');
    const withDefaults = [...surfaces, { ...carrierPigeon, defaultsFile }];
    // Only the adapter's file gives pigeon's keys: config/default.yaml names no surface.
    expect((loadConfig({ surfaces: withDefaults, env: {} }) as unknown as Record<string, unknown>).pigeon).toEqual({ loft: 'barn', birds: 2 });
    const user = yamlFile('pigeon-user.yaml', 'pigeon:\n  birds: 5\n');
    const config = loadConfig({ surfaces: withDefaults, file: user, env: { LISABOT_PIGEON_LOFT: 'attic' } });
    expect((config as unknown as Record<string, unknown>).pigeon).toEqual({ loft: 'attic', birds: 5 });
    // A problem in it names that file.
    const broken = yamlFile('pigeon-broken.yaml', 'loft: barn\nbirds: lots\n');
    expect(failure({ surfaces: [...surfaces, { ...carrierPigeon, defaultsFile: broken }], env: {} })).toMatch(/pigeon\.birds \(in .*pigeon-broken\.yaml\)/);
  });

  it("holds a surface's section to its schema, with the same messages as the core's", () => {
    const file = yamlFile('pigeon-typo.yaml', 'pigeon:\n  loft: roof\n  bird: 3\n');
    const message = failure({ surfaces: withPigeon, file, env: {} });
    expect(message).toMatch(/pigeon\.bird \(in .*pigeon-typo\.yaml\): unknown key; did you mean pigeon\.birds\?/);
    expect(failure({ surfaces: withPigeon, file: pigeonYaml(), env: { LISABOT_PIGEON_BIRDS: 'many' } })).toMatch(
      /pigeon\.birds.*LISABOT_PIGEON_BIRDS.*expected a number/,
    );
    // Secrets stay out of files, and point at the surface's own variable.
    const secret = yamlFile('pigeon-secret.yaml', 'pigeon:\n  loft: roof\n  birds: 3\n  token: abc\n');
    expect(failure({ surfaces: withPigeon, file: secret, env: {} })).toMatch(/pigeon\.token .*set the PIGEON_TOKEN environment variable/);
  });

  it("runs a surface's own check of its section against its secrets", () => {
    const file = yamlFile('pigeons.yaml', 'pigeon:\n  loft: roof\n  birds: 12\n');
    expect(loadConfig({ surfaces: withPigeon, file, env: {} })).toBeDefined();
    expect(failure({ surfaces: withPigeon, file, env: { PIGEON_TOKEN: 'coo' } })).toMatch(/pigeon\.birds \(in .*pigeons\.yaml\) is more birds/);
  });

  it("allows the surfaces' names, and only theirs, in the allow-lists", () => {
    const env = { LISABOT_LIMITS_ALLOWED_USERS: '["pigeon:1", "cli:me"]' };
    expect(loadConfig({ surfaces: withPigeon, file: pigeonYaml(), env }).limits.allowedUsers).toEqual(['pigeon:1', 'cli:me']);
    expect(failure({ env })).toMatch(/limits\.allowedUsers\[0\].*with surface web, discord, slack or cli/);
  });

  it("refuses a section of a surface it was not given, and a surface named like a core section", () => {
    expect(failure({ file: pigeonYaml(), env: {} })).toMatch(/pigeon .*unknown key/);
    expect(() => loadConfig({ surfaces: [{ ...carrierPigeon, name: 'limits' }], env: {} })).toThrow(/collides/);
  });
});
