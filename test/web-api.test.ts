import { request } from 'node:http';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/conversation/index.js';
import { FakeAssistant } from './fakes/assistant.js';
import { BLUE_AREA, Client, RED_AREA, TEST_LIMITS, shapesPng, startTestWeb, toyWebForFile } from './helpers/web.js';

// End to end: the real runtime over a generated toy pack. A FakeAssistant stands in
// only where a test must hold the queue or make the assistant fail.
const web = toyWebForFile();
const png = await shapesPng();

/** The turn asked with an image is answered, and the conversation has its image. */
async function goodTurn(client: Client, question = 'where is the red square?', image: Buffer | null = png) {
  const { turnId, view } = await client.answered(question, image ? { data: image, name: 'shapes.png' } : undefined);
  expect(view.state, JSON.stringify(view)).toBe('done');
  return { turnId, view };
}

describe('web chat: basics', () => {
  it('answers /healthz', async () => {
    const client = new Client(web.url);
    const { status, body, response } = await client.json('/healthz');
    expect(status).toBe(200);
    expect(body).toEqual({ ok: true });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('serves the page with a session cookie and a self-only CSP', async () => {
    const client = new Client(web.url);
    const response = await client.fetch('/');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("img-src 'self' blob:");
    expect(csp).not.toMatch(/unsafe|https?:/);
    const cookie = response.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^lisa_session=[0-9a-f-]{36}; /);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    const html = await response.text();
    expect(html).toContain('<script type="module" src="/app.js">');
    expect(html).not.toMatch(/https?:\/\//);
    for (const asset of ['/app.js', '/net.js', '/log.js', '/app.css', '/favicon.svg']) {
      expect((await client.fetch(asset)).status, asset).toBe(200);
    }
  });

  it('serves nothing outside its own files', async () => {
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/public/app.js', '/app.js/..%2f..%2fserver.ts', '/index.html', '/etc/passwd']) {
      const response = await fetch(web.url + path);
      expect(response.status, path).toBe(404);
      expect(await response.text()).not.toContain('"dependencies"');
    }
    // A raw path the URL parser would not normalise.
    const raw = await new Promise<number>((resolve, reject) => {
      const { hostname, port } = new URL(web.url);
      request({ hostname, port, path: '/..%2F..%2Fpackage.json' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(raw).toBe(404);
  });

  it('tells the model and whether it is a demo', async () => {
    const { status, body } = await new Client(web.url).json('/api/model');
    expect(status).toBe(200);
    expect(body).toEqual({ name: 'toy', demo: true });
  });
});

describe('web chat: a turn', () => {
  it('answers with text, segments and an overlay, then a follow-up on the same image', async () => {
    const client = new Client(web.url);
    const first = await goodTurn(client);
    // The red shape is drawn (and marked) in blue: red on red would not show.
    expect(first.view.reply.text).toContain('\u{1F7E6}');
    expect(first.view.reply.demoNotice).toMatch(/not LISA/);
    expect(first.view.reply.segments).toHaveLength(1);
    const [segment] = first.view.reply.segments;
    expect(segment).toMatchObject({ index: 0, area: RED_AREA, empty: false, bbox: [8, 10, 30, 20] });
    expect(segment.colour).toEqual({ hex: expect.stringMatching(/^#[0-9a-f]{6}$/), emoji: '\u{1F7E6}', name: 'blue' });
    expect(first.view.reply.overlayUrl).toBe(`/api/turns/${first.turnId}/overlay`);

    const overlay = await client.fetch(first.view.reply.overlayUrl);
    expect(overlay.status).toBe(200);
    expect(overlay.headers.get('content-type')).toBe('image/png');
    expect(overlay.headers.get('x-content-type-options')).toBe('nosniff');
    const meta = await sharp(Buffer.from(await overlay.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([96, 64]);

    expect((await client.json('/api/conversation')).body.hasImage).toBe(true);
    // The image is in the store (what the refusal tests check is absent).
    expect(await web.images!.get(sha256Hex(png))).toBeDefined();
    const followUp = await goodTurn(client, 'and where is the blue one?', null);
    expect(followUp.view.reply.segments[0].area).toBe(BLUE_AREA);
  });

  it('streams the state changes as Server-Sent Events, with queue positions', async () => {
    const assistant = new FakeAssistant(TEST_LIMITS);
    const held = await startTestWeb({ assistant });
    try {
      const client = new Client(held.url);
      const release = assistant.hold();
      const a = await client.ask('where is red?', { data: png });
      // The conversation gets its image when the first answer is stored, so the second turn brings it too.
      const b = await client.ask('and blue?', { data: png });
      expect([a.status, b.status]).toEqual([202, 202]);
      expect((await client.json(`/api/turns/${b.body.turnId}`)).body).toEqual({ state: 'queued', position: 2 });

      const events = await client.fetch(`/api/turns/${a.body.turnId}/events`);
      expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
      const reader = events.body!.pipeThrough(new TextDecoderStream()).getReader();
      const states: any[] = [];
      let buffer = '';
      let released = false;
      while (!states.some((s) => s.state === 'done' || s.state === 'error')) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (block.includes('event: state') && data) states.push(JSON.parse(data.slice(6)));
        }
        if (!released && states.length > 0) {
          released = true;
          release();
        }
      }
      expect(states[0]).toEqual({ state: 'queued', position: 1 });
      expect(states.map((s) => s.state)).toEqual(['queued', 'working', 'done']);
      expect(states.at(-1).reply.segments[0].area).toBe(RED_AREA);
      // The stream ends after the final state.
      expect((await reader.read()).done).toBe(true);
      const second = await client.settle(b.body.turnId);
      expect(second.reply.segments[0].area).toBe(BLUE_AREA);
      // A finished turn's stream gives its final state and ends.
      const again = await (await client.fetch(`/api/turns/${b.body.turnId}/events`)).text();
      expect(again).toMatch(/^event: state\ndata: \{"state":"done"/);

      // "New conversation" cancels a turn still waiting in the queue.
      const releaseAgain = assistant.hold();
      const c = await client.ask('where is red?', { data: png });
      expect(c.status).toBe(202);
      const reset = await client.json('/api/conversation/reset', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(reset.status).toBe(200);
      releaseAgain();
      const cancelled = await client.settle(c.body.turnId);
      expect(cancelled).toMatchObject({ state: 'error', error: { code: 'cancelled' } });
    } finally {
      await held.stop();
    }
  });

  it('keeps each browser session to itself', async () => {
    const alice = new Client(web.url);
    const bob = new Client(web.url);
    const { turnId, view } = await goodTurn(alice);
    await bob.fetch('/');
    expect(bob.sessionId).toBeDefined();
    expect(bob.sessionId).not.toBe(alice.sessionId);
    for (const path of [`/api/turns/${turnId}`, `/api/turns/${turnId}/events`, view.reply.overlayUrl]) {
      expect((await bob.fetch(path)).status, path).toBe(404);
      expect((await fetch(web.url + path)).status, `${path} without a cookie`).toBe(404);
    }
    // Bob's conversation has no image; Alice's still has hers.
    expect((await bob.json('/api/conversation')).body.hasImage).toBe(false);
    const bobFollowUp = await bob.ask('and the blue one?');
    expect(bobFollowUp.status).toBe(400);
    expect(bobFollowUp.body.error.code).toBe('no_image');
    expect(bobFollowUp.body.error.message).toMatch(/Drop or choose an image above/);
    await goodTurn(alice, 'and the blue one?', null);

    // A forged cookie is not a session: it gets a fresh one.
    const mallory = new Client(web.url);
    mallory.cookie = `lisa_session=../${alice.sessionId}`;
    await mallory.fetch('/api/conversation');
    expect(mallory.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(mallory.sessionId).not.toBe(alice.sessionId);
  });

  it('starts a new conversation on reset', async () => {
    const client = new Client(web.url);
    await goodTurn(client);
    const reset = await client.json('/api/conversation/reset', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(reset.status).toBe(200);
    expect((await client.json('/api/conversation')).body.hasImage).toBe(false);
    expect((await client.ask('and the blue one?')).body.error.code).toBe('no_image');
  });
});

describe('web chat: bad input', () => {
  /**
   * After a refusal: the refused file is not in the image store, the session
   * has no image, nothing can follow up on it, and a good turn still works.
   */
  async function expectNothingKept(client: Client, refused?: Uint8Array) {
    if (refused) expect(await web.images!.get(sha256Hex(refused))).toBeUndefined();
    expect((await client.json('/api/conversation')).body.hasImage).toBe(false);
    const followUp = await client.ask('where is the red square?');
    expect(followUp.status).toBe(400);
    expect(followUp.body.error.code).toBe('no_image');
    await goodTurn(client);
    expect((await client.json('/healthz')).status).toBe(200);
  }

  function expectClearError(body: any, code: string, message: RegExp) {
    expect(body.error.code).toBe(code);
    expect(body.error.message).toMatch(message);
    // Written for a person: no stack, no internals.
    expect(body.error.message).not.toMatch(/\n\s+at |Error:|undefined|\[object/);
  }

  it('refuses a text file', async () => {
    const client = new Client(web.url);
    const notes = Buffer.from('just some notes, not a picture\n');
    const { status, body } = await client.ask('where is the red square?', { data: notes, name: 'notes.txt', type: 'text/plain' });
    expect(status).toBe(422);
    expectClearError(body, 'image_unsupported', /text file|not an image/i);
    await expectNothingKept(client, notes);
  });

  it('refuses an HTML page uploaded as an image', async () => {
    const client = new Client(web.url);
    const html = '<!DOCTYPE html>\n<html><head><title>Not found</title></head><body><h1>404</h1></body></html>\n';
    const page = Buffer.from(html);
    const { status, body } = await client.ask('where is the red square?', { data: page, name: 'photo.png', type: 'image/png' });
    expect(status).toBe(422);
    expectClearError(body, 'image_unsupported', /HTML/);
    await expectNothingKept(client, page);
  });

  it('refuses an image over maxImageBytes, discarding the upload', async () => {
    const client = new Client(web.url);
    // Random pixels do not compress: well over the 200 KB test limit.
    const noise = await sharp(Buffer.from(Array.from({ length: 300 * 300 * 3 }, () => Math.floor(Math.random() * 256))), {
      raw: { width: 300, height: 300, channels: 3 },
    })
      .png()
      .toBuffer();
    expect(noise.length).toBeGreaterThan(TEST_LIMITS.maxImageBytes);
    const before = web.received.length;
    const { status, body } = await client.ask('where is the red square?', { data: noise, name: 'big.png' });
    expect(status).toBe(413);
    expectClearError(body, 'image_too_large', /too large.*200 KB/);
    // Refused while reading the upload: the assistant never saw it.
    expect(web.received.length).toBe(before);
    await expectNothingKept(client, noise);
  });

  it('cuts off a body far over every limit without reading it all', async () => {
    const client = new Client(web.url);
    await client.fetch('/');
    const huge = Buffer.alloc(TEST_LIMITS.maxImageBytes * 3, 0x41);
    const { hostname, port } = new URL(web.url);
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          hostname,
          port,
          path: '/api/turns',
          method: 'POST',
          headers: { 'content-type': 'multipart/form-data; boundary=xyz', 'content-length': huge.length, cookie: client.cookie },
        },
        (res) => {
          let text = '';
          res.on('data', (chunk) => (text += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on('error', reject);
      req.end(huge);
    });
    expect(answer.status).toBe(413);
    expectClearError(JSON.parse(answer.text), 'image_too_large', /too large/);
    await expectNothingKept(client);
  });

  it('refuses an image with too many pixels', async () => {
    const client = new Client(web.url);
    // 1200 x 1000 white pixels: a tiny file, over the 1 000 000-pixel test limit.
    const wide = await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#ffffff' } }).png().toBuffer();
    expect(wide.length).toBeLessThan(TEST_LIMITS.maxImageBytes);
    const { status, body } = await client.ask('where is the red square?', { data: wide, name: 'wide.png' });
    expect(status).toBe(422);
    expectClearError(body, 'image_too_many_pixels', /pixels/);
    await expectNothingKept(client, wide);
  });

  it('refuses an empty or too long question', async () => {
    const client = new Client(web.url);
    for (const question of ['', '   \n ', undefined]) {
      const { status, body } = await client.ask(question, { data: png });
      expect(status, JSON.stringify(question)).toBe(400);
      expectClearError(body, 'question_empty', /question/i);
    }
    const long = await client.ask('x'.repeat(TEST_LIMITS.maxQuestionChars + 1), { data: png });
    expect(long.status).toBe(400);
    expectClearError(long.body, 'question_too_long', /question/i);
    const huge = await client.ask('é'.repeat(TEST_LIMITS.maxQuestionChars * 4), { data: png });
    expect(huge.status).toBe(400);
    expectClearError(huge.body, 'question_too_long', /question/i);
    await expectNothingKept(client);
  });

  it('refuses malformed uploads: not multipart, two files, broken framing, an interrupted upload', async () => {
    const client = new Client(web.url);
    const json = await client.json('/api/turns', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"question":"hi"}' });
    expect(json.status).toBe(415);
    expectClearError(json.body, 'unsupported_media_type', /multipart\/form-data/);

    const two = new FormData();
    two.append('question', 'where is red?');
    two.append('image', new Blob([png], { type: 'image/png' }), 'a.png');
    two.append('image', new Blob([png], { type: 'image/png' }), 'b.png');
    const twoFiles = await client.json('/api/turns', { method: 'POST', body: two });
    expect(twoFiles.status).toBe(400);
    expectClearError(twoFiles.body, 'too_many_files', /one image/);

    const broken = await client.json('/api/turns', {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=abc' },
      body: '--abc\r\nContent-Disposition: form-data; name="question"\r\n\r\nwhere is red?\r\n--abc\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG',
    });
    expect(broken.status).toBe(400);
    expectClearError(broken.body, 'bad_request', /could not be read/);

    const { hostname, port } = new URL(web.url);
    await new Promise<void>((resolve) => {
      const req = request({
        hostname,
        port,
        path: '/api/turns',
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=abc', 'content-length': 100_000, cookie: client.cookie },
      });
      req.on('error', () => resolve());
      req.write('--abc\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n');
      req.write(png.subarray(0, 100), () => setTimeout(() => req.destroy(), 20));
      req.on('close', () => resolve());
    });
    await expectNothingKept(client);
  });

  it('refuses other methods, content types, origins and hosts', async () => {
    const client = new Client(web.url);
    await client.fetch('/');
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      const response = await client.fetch('/api/turns', { method });
      expect(response.status, method).toBe(405);
    }
    expect((await client.fetch('/healthz', { method: 'POST' })).status).toBe(405);
    expect((await client.fetch('/healthz', { method: 'POST' })).headers.get('allow')).toBe('GET');

    const plain = await client.json('/api/conversation/reset', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
    expect(plain.status).toBe(415);
    const bigJson = await client.json('/api/conversation/reset', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(100_000) }),
    });
    expect(bigJson.status).toBe(413);

    const form = new FormData();
    form.append('question', 'where is red?');
    const crossSite = await client.json('/api/turns', { method: 'POST', body: form, headers: { origin: 'http://evil.example' } });
    expect(crossSite.status).toBe(403);
    expectClearError(crossSite.body, 'cross_origin', /other sites/);

    const { hostname, port } = new URL(web.url);
    const rebound = await new Promise<number>((resolve, reject) => {
      request({ hostname, port, path: '/api/model', headers: { host: `evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(rebound).toBe(421);
    expect((await client.json('/healthz')).status).toBe(200);
  });

  it('shows the user an internal failure without its details, and keeps serving', async () => {
    const assistant = new FakeAssistant(TEST_LIMITS);
    const broken = await startTestWeb({ assistant });
    try {
      assistant.handle = async (_turn, options) => {
        options?.onProgress?.({ type: 'queued', position: 1 });
        throw new Error('ONNX exploded at /secret/path/model.onnx');
      };
      const client = new Client(broken.url);
      const created = await client.ask('where is red?', { data: png });
      expect(created.status).toBe(202);
      const view = await client.settle(created.body.turnId);
      expect(view.state).toBe('error');
      expect(view.error.code).toBe('internal');
      expect(view.error.message).not.toMatch(/ONNX|secret/);
      assistant.handle = async () => {
        throw new Error('failed before queueing');
      };
      const sync = await client.ask('where is red?', { data: png });
      expect(sync.status).toBe(500);
      expect(sync.body.error.message).not.toMatch(/queueing/);
      expect((await client.json('/healthz')).status).toBe(200);
    } finally {
      await broken.stop();
    }
  });
});
