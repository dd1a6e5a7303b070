/**
 * `lisa-bot ask` with what a new user, or a careless one, gives it (issue 17):
 * long questions, degenerate images, bad output paths. Every refusal is one
 * line and exit 2, before the model runs; nothing crashes.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cli } from './helpers/cli.js';

const require = createRequire(import.meta.url);
let dir: string;
let pack: string;
let red: string;
let env: NodeJS.ProcessEnv;

const plain = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lisa-cli-hard-'));
  pack = path.join(dir, 'toy');
  expect((await cli(['models', 'toy', '--out', pack])).code).toBe(0);
  red = path.join(dir, 'red.png');
  await writeFile(red, await plain(64, 48));
  env = { LISABOT_STORE_URL: `sqlite://${path.join(dir, 'sessions.sqlite')}`, LOG_FORMAT: 'json' };
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

function expectRefusal(result: { code: number; stdout: string; stderr: string }, message: RegExp): void {
  expect(result.stdout).toBe('');
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(message);
  expect(result.code).toBe(2);
}

/** Runs the CLI with `input` on stdin. */
function cliWithStdin(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input);
  });
}

describe('a long question (issue 17, item 1)', () => {
  const tooLong = /^lisa-bot: The question is too long: the limit is 2,000 characters \(this one has 30,000\)\. Please shorten it\.$/m;

  it('one-shot: refused with the chat surfaces\' message, not a crash', async () => {
    expectRefusal(await cli(['ask', '--model', pack, '--image', red, 'a'.repeat(30_000)], env), tooLong);
  });

  it('--session: refused before the engine thread starts', async () => {
    expectRefusal(await cli(['ask', '--session', 'long', '--model', pack, '--image', red, 'a'.repeat(30_000)], env), tooLong);
  });

  it('counts characters, not UTF-16 units: 1,500 emoji are 1,500 characters', async () => {
    const emoji = '🍎'.repeat(1_500);
    const file = path.join(dir, 'emoji.txt');
    await writeFile(file, emoji);
    const result = await cli(['ask', '--model', pack, '--image', red, '--question-file', file], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('a command line onnxruntime would crash on is refused whatever the configured limit', async () => {
    const config = path.join(dir, 'long-questions.yaml');
    await writeFile(config, 'limits:\n  maxQuestionChars: 100000\n');
    for (const session of [[], ['--session', 'argv']]) {
      const result = await cli(['ask', ...session, '--config', config, '--model', pack, '--image', red, 'a'.repeat(30_000)], env);
      expectRefusal(result, /command line is [\d,]+ bytes long.*--question-file/);
    }
  });

  it('takes the question from --question-file or stdin, where length is no danger', async () => {
    const config = path.join(dir, 'long-ok.yaml');
    await writeFile(config, 'limits:\n  maxQuestionChars: 100000\n');
    const file = path.join(dir, 'question.txt');
    await writeFile(file, `segment the red thing ${'a'.repeat(30_000)}`);
    const fromFile = await cli(['ask', '--config', config, '--model', pack, '--image', red, '--question-file', file], env);
    expect(fromFile.stderr).toBe('');
    expect(fromFile.stdout.split('\n')[0]).toBe('Sure, it is [mask 1].');
    const fromStdin = await cliWithStdin(['ask', '--model', pack, '--image', red, '-'], 'segment the red thing\n');
    expect(fromStdin.stderr).toBe('');
    expect(fromStdin.stdout.split('\n')[0]).toBe('Sure, it is [mask 1].');
    const session = await cliWithStdin(['ask', '--session', 'stdin', '--model', pack, '--image', red, '-'], 'segment the red thing\n');
    expect(session.code).toBe(0);
    expect(session.stdout).toContain('Sure, it is [mask 1].');
  });
});

describe('degenerate image sizes (issue 17, item 2)', () => {
  it.each([
    [1, 3000],
    [4000, 1],
  ])('%i x %i: a clear refusal, exit 2, in both modes', async (width, height) => {
    const file = path.join(dir, `thin-${width}x${height}.png`);
    await writeFile(file, await plain(width, height));
    const reason = new RegExp(`The image is ${width} x ${height} pixels: too thin for the model`);
    expectRefusal(await cli(['ask', '--model', pack, '--image', file, 'segment the red thing'], env), reason);
    expectRefusal(await cli(['ask', '--session', `thin-${width}`, '--model', pack, '--image', file, 'segment the red thing'], env), reason);
  });
});

describe('output paths and the rest of the CLI (issue 17, item 8)', () => {
  it('a missing --out folder is refused before the model runs', async () => {
    const result = await cli(['ask', '--model', path.join(dir, 'no-such-pack'), '--image', red, '--out', path.join(dir, 'missing', 'x.png'), 'red'], env);
    expectRefusal(result, /--out: the folder .*missing does not exist/);
  });

  it('--mask-out must be a .png, checked before the model runs', async () => {
    const result = await cli(['ask', '--model', path.join(dir, 'no-such-pack'), '--image', red, '--mask-out', path.join(dir, 'm.jpg'), 'red'], env);
    expectRefusal(result, /--mask-out writes a PNG/);
    await expect(stat(path.join(dir, 'm.jpg'))).rejects.toThrow();
  });

  it('--out naming a folder is refused', async () => {
    await mkdir(path.join(dir, 'a-folder.png'), { recursive: true });
    expectRefusal(await cli(['ask', '--model', pack, '--image', red, '--out', path.join(dir, 'a-folder.png'), 'red'], env), /is a folder/);
  });

  it('--version prints the version', async () => {
    const result = await cli(['--version']);
    const { version } = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it('ask --session prints the per-mask line and no provider warning', async () => {
    const result = await cli(['ask', '--session', 'quiet', '--model', pack, '--image', red, 'segment the red thing'], env);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\[mask 1\] 100\.0% of the image, box x=0 y=0 w=64 h=48, score \d\.\d\d$/m);
  });

  it('an explicit --provider that cannot load is said in one line, in both modes', async () => {
    const cuda = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so');
    if (existsSync(cuda)) return; // a GPU host: cuda may well load
    for (const session of [[], ['--session', 'provider']]) {
      const result = await cli(['ask', ...session, '--provider', 'cuda', '--model', pack, '--image', red, 'segment the red thing'], env);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('lisa-bot: --provider cuda is not available here; ran on cpu\n');
    }
  });

  it('the one-shot CLI does not suggest a conversation it does not have', async () => {
    const config = path.join(dir, 'long-prompt.yaml');
    await writeFile(config, 'limits:\n  maxQuestionChars: 100000\n');
    const file = path.join(dir, 'long-prompt.txt');
    await writeFile(file, 'red '.repeat(5000));
    const result = await cli(['ask', '--config', config, '--model', pack, '--image', red, '--question-file', file], env);
    expectRefusal(result, /too long for the model/);
    expect(result.stderr).not.toMatch(/conversation/);
  });
});
