/**
 * A local fake of the Slack Web API (and of files.slack.com, the upload URL and
 * response_url), enough for the real Bolt app and WebClient: it records every
 * call, keeps the messages the bot posts, serves private files only with the
 * bot token (Slack's HTML login page otherwise), and stores uploaded bytes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs, readBody, uploadedBytes } from './body.js';

export interface RecordedCall {
  method: string;
  args: Record<string, unknown>;
  authorization?: string;
}

export interface FileRequest {
  path: string;
  /** The Host header, i.e. which host name the client used. */
  host: string;
  authorization?: string;
}

export interface StoredMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  text: string;
  user?: string;
  bot_id?: string;
  files?: FakeFile[];
  deleted?: boolean;
}

export interface FakeFile {
  id: string;
  name: string;
  title: string;
  mimetype: string;
  filetype: string;
  size: number;
  url_private: string;
  url_private_download: string;
  original_w?: number;
  original_h?: number;
  permalink: string;
}

export interface Upload {
  fileId: string;
  filename?: string;
  bytes: Buffer;
  /** Set by files.completeUploadExternal. */
  channel?: string;
  threadTs?: string;
}

interface ServedFile {
  bytes: Buffer;
  contentType: string;
  /** Always answer the HTML login page, as Slack does when the app lacks files:read. */
  loginPage: boolean;
}

const LOGIN_PAGE = '<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to your workspace</body></html>';

export class FakeSlack {
  readonly botToken: string;
  readonly botUserId = 'UBOT0001';
  readonly botId = 'BBOT0001';
  readonly teamId = 'T0TEST01';
  /** The app-level token apps.connections.open accepts (Socket Mode). */
  readonly appToken = 'xapp-test-token';
  /** What apps.connections.open answers; set by FakeSocketMode. */
  socketUrl: string | undefined;
  readonly calls: RecordedCall[] = [];
  readonly fileRequests: FileRequest[] = [];
  readonly responses: { path: string; body: Record<string, unknown> }[] = [];
  readonly messages: StoredMessage[] = [];
  readonly uploads = new Map<string, Upload>();
  readonly files = new Map<string, FakeFile>();
  private readonly served = new Map<string, ServedFile>();
  private readonly failures = new Map<string, string>();
  private seq = 0;
  private server!: Server;
  private server6: Server | undefined;
  port = 0;

  private constructor(botToken: string) {
    this.botToken = botToken;
  }

  static async start(botToken = 'xoxb-test-token'): Promise<FakeSlack> {
    const fake = new FakeSlack(botToken);
    fake.server = createServer((req, res) => {
      fake.route(req, res).catch((error: unknown) => {
        res.writeHead(500).end(String(error));
      });
    });
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    // `localhost` (the "other host" of the tests) may resolve to ::1: answer there too, on the same port, when possible.
    fake.server6 = createServer((req, res) => {
      fake.route(req, res).catch((error: unknown) => res.writeHead(500).end(String(error)));
    });
    await new Promise<void>((resolve) => {
      fake.server6!.once('error', () => {
        fake.server6 = undefined;
        resolve();
      });
      fake.server6!.listen(fake.port, '::1', resolve);
    });
    return fake;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The HTTP server on 127.0.0.1 (FakeSocketMode takes its upgrades). */
  get http(): Server {
    return this.server;
  }

  get apiUrl(): string {
    return `${this.url}/api/`;
  }

  async close(): Promise<void> {
    for (const server of [this.server, this.server6]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /** Calls of one Web API method, in order. */
  of(method: string): RecordedCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** Answers `{ ok: false, error }` for a method from now on. */
  fail(method: string, error: string): void {
    this.failures.set(method, error);
  }

  nextTs(): string {
    this.seq += 1;
    return `${1_700_000_000 + this.seq}.${String(this.seq).padStart(6, '0')}`;
  }

  /** A private file, served at `http://<host>:<port>/files-pri/...` (host: the name the URL uses). */
  addFile(name: string, bytes: Buffer, options: { mimetype?: string; width?: number; height?: number; host?: string; loginPage?: boolean } = {}): FakeFile {
    this.seq += 1;
    const id = `F${String(this.seq).padStart(8, '0')}`;
    const path = `/files-pri/${this.teamId}-${id}/${name}`;
    const base = `http://${options.host ?? '127.0.0.1'}:${this.port}`;
    const mimetype = options.mimetype ?? 'image/png';
    const file: FakeFile = {
      id,
      name,
      title: name,
      mimetype,
      filetype: mimetype.split('/')[1] ?? 'binary',
      size: bytes.length,
      url_private: `${base}${path}`,
      url_private_download: `${base}/files-pri/${this.teamId}-${id}/download/${name}`,
      original_w: options.width,
      original_h: options.height,
      permalink: `https://test.slack.com/files/U0USER001/${id}/${name}`,
    };
    this.files.set(id, file);
    const served = { bytes, contentType: mimetype, loginPage: options.loginPage ?? false };
    this.served.set(path, served);
    this.served.set(`/files-pri/${this.teamId}-${id}/download/${name}`, served);
    return file;
  }

  addMessage(message: StoredMessage): StoredMessage {
    this.messages.push(message);
    return message;
  }

  /** Messages the bot posted (not deleted), optionally in one thread. */
  botMessages(channel?: string, threadTs?: string): StoredMessage[] {
    return this.messages.filter(
      (m) => m.bot_id === this.botId && !m.deleted && (channel === undefined || m.channel === channel) && (threadTs === undefined || m.thread_ts === threadTs),
    );
  }

  /** Uploads that completeUploadExternal shared. */
  sharedUploads(): Upload[] {
    return [...this.uploads.values()].filter((u) => u.channel !== undefined);
  }

  responseUrl(): string {
    this.seq += 1;
    return `${this.url}/response/${this.seq}`;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const authorization = req.headers.authorization;
    if (req.method === 'GET' && url.pathname.startsWith('/files-pri/')) {
      this.fileRequests.push({ path: url.pathname, host: req.headers.host ?? '', authorization });
      const file = this.served.get(url.pathname);
      if (!file) return void res.writeHead(404).end();
      if (file.loginPage || authorization !== `Bearer ${this.botToken}`) {
        return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(LOGIN_PAGE);
      }
      return void res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.length }).end(file.bytes);
    }
    const body = await readBody(req);
    if (req.method === 'POST' && url.pathname.startsWith('/upload/')) {
      const upload = this.uploads.get(url.pathname.slice('/upload/'.length));
      if (!upload) return void res.writeHead(404).end();
      upload.bytes = await uploadedBytes(req, body);
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${upload.bytes.length}`);
    }
    if (req.method === 'POST' && url.pathname.startsWith('/response/')) {
      this.responses.push({ path: url.pathname, body: JSON.parse(body.toString('utf8')) as Record<string, unknown> });
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    }
    if (req.method === 'POST' && url.pathname.startsWith('/api/')) {
      const method = url.pathname.slice('/api/'.length);
      const args = await parseArgs(req, body);
      this.calls.push({ method, args, authorization });
      const token = method === 'apps.connections.open' ? this.appToken : this.botToken;
      const result = authorization === `Bearer ${token}` ? this.api(method, args) : { ok: false, error: 'invalid_auth' };
      return void res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(result));
    }
    res.writeHead(404).end();
  }

  private api(method: string, a: Record<string, unknown>): Record<string, unknown> {
    const failure = this.failures.get(method);
    if (failure) return { ok: false, error: failure };
    const str = (k: string) => (a[k] === undefined ? undefined : String(a[k]));
    switch (method) {
      case 'apps.connections.open':
        return this.socketUrl ? { ok: true, url: this.socketUrl } : { ok: false, error: 'not_allowed_token_type' };
      case 'auth.test':
        return { ok: true, url: 'https://test.slack.com/', team: 'Test', user: 'lisa', team_id: this.teamId, user_id: this.botUserId, bot_id: this.botId };
      case 'chat.postMessage': {
        const message = this.addMessage({ channel: str('channel')!, ts: this.nextTs(), thread_ts: str('thread_ts'), text: str('text') ?? '', user: this.botUserId, bot_id: this.botId });
        return { ok: true, channel: message.channel, ts: message.ts, message };
      }
      case 'chat.update': {
        const message = this.messages.find((m) => m.channel === str('channel') && m.ts === str('ts') && !m.deleted);
        if (!message) return { ok: false, error: 'message_not_found' };
        message.text = str('text') ?? '';
        return { ok: true, channel: message.channel, ts: message.ts, text: message.text };
      }
      case 'chat.delete': {
        const message = this.messages.find((m) => m.channel === str('channel') && m.ts === str('ts') && !m.deleted);
        if (!message) return { ok: false, error: 'message_not_found' };
        message.deleted = true;
        return { ok: true, channel: message.channel, ts: message.ts };
      }
      case 'chat.postEphemeral':
        return { ok: true, message_ts: this.nextTs() };
      case 'conversations.history':
      case 'conversations.replies':
        return { ok: true, has_more: false, messages: this.history(method, a) };
      case 'files.info': {
        const file = this.files.get(str('file') ?? '');
        return file ? { ok: true, file } : { ok: false, error: 'file_not_found' };
      }
      case 'files.getUploadURLExternal': {
        this.seq += 1;
        const fileId = `FUP${String(this.seq).padStart(6, '0')}`;
        this.uploads.set(fileId, { fileId, filename: str('filename'), bytes: Buffer.alloc(0) });
        return { ok: true, upload_url: `${this.url}/upload/${fileId}`, file_id: fileId };
      }
      case 'files.completeUploadExternal': {
        const files = JSON.parse(str('files') ?? '[]') as { id: string; title?: string }[];
        for (const f of files) {
          const upload = this.uploads.get(f.id);
          if (!upload) return { ok: false, error: 'file_not_found' };
          upload.channel = str('channel_id');
          upload.threadTs = str('thread_ts');
        }
        return { ok: true, files: files.map((f) => ({ id: f.id, title: f.title })) };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private history(method: string, a: Record<string, unknown>): StoredMessage[] {
    const channel = String(a.channel);
    const inclusive = a.inclusive === 'true' || a.inclusive === true;
    const within = (ts: string) => {
      const t = Number(ts);
      const oldest = a.oldest === undefined ? -Infinity : Number(a.oldest);
      const latest = a.latest === undefined ? Infinity : Number(a.latest);
      return inclusive ? t >= oldest && t <= latest : t > oldest && t < latest;
    };
    const live = this.messages.filter((m) => m.channel === channel && !m.deleted);
    if (method === 'conversations.history') {
      return live.filter((m) => (m.thread_ts === undefined || m.thread_ts === m.ts) && within(m.ts)).sort((x, y) => Number(y.ts) - Number(x.ts));
    }
    // Like Slack: the thread's parent first, then the replies in range.
    const parent = live.find((m) => m.ts === String(a.ts));
    const replies = live.filter((m) => m.thread_ts === String(a.ts) && m.ts !== String(a.ts) && within(m.ts));
    return [...(parent ? [parent] : []), ...replies.sort((x, y) => Number(x.ts) - Number(y.ts))];
  }
}
