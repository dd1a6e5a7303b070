/**
 * A Hugging Face Hub stand-in on 127.0.0.1 that answers the calls
 * @huggingface/hub makes (modelInfo, listFiles, fileDownloadInfo) and the byte
 * downloads, the way huggingface.co does: LFS files redirect to a CDN path,
 * Range requests get 206 with Content-Range, failures carry X-Error-Code.
 * It records every request and can drop a connection part-way through a file.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  data: Buffer;
  /** Stored with Git LFS (big files): listed with lfs.oid = sha256, served through a redirect. */
  lfs?: boolean;
}

export interface FakeRepo {
  sha: string;
  files: Record<string, FakeFile>;
  /** Needs this bearer token (a private repo). */
  token?: string;
  /** Files answer 401/403 GatedRepo (licence not accepted). */
  gated?: boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

export const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
export const gitOid = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');

export class FakeHub {
  readonly repos = new Map<string, FakeRepo>();
  readonly requests: RecordedRequest[] = [];
  /** file name -> bytes to send before dropping the connection, and how many more times to do it. */
  readonly drops = new Map<string, { after: number; times: number }>();
  /** file name -> bytes served instead of the real ones (a corrupt mirror). */
  readonly corrupt = new Map<string, Buffer>();
  private server = http.createServer((req, res) => this.handle(req, res));
  url = '';

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Requests for a file's bytes at the Hub's resolve URL (their CDN redirects not counted again). */
  downloadsOf(file: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path.includes('/resolve/') && r.path.endsWith(`/${file}`));
  }

  private fail(res: http.ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code });
    res.end(JSON.stringify({ error: message }));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    const auth = req.headers.authorization;
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname, range: req.headers.range, authorization: auth });

    const cdn = /^\/cdn\/([^/]+)\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (cdn) {
      const repo = this.repos.get(`${cdn[1]}/${cdn[2]}`);
      const file = repo?.files[decodeURIComponent(cdn[3])];
      if (!file) return this.fail(res, 404, 'EntryNotFound', 'no such object');
      // A CDN's own ETag (S3 style), not the Hub's linked one.
      return this.serveBytes(req, res, decodeURIComponent(cdn[3]), file, { ETag: `"${sha256(file.data).slice(0, 32)}"` });
    }

    const api = /^\/api\/models\/([^/]+)\/([^/]+)\/(revision|tree)\/([^/?]+)/.exec(url.pathname);
    const resolve = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const parts = api ?? resolve;
    if (!parts) return this.fail(res, 404, 'NotFound', 'unknown route');
    const id = `${parts[1]}/${parts[2]}`;
    const repo = this.repos.get(id);
    const authorised = repo && (!repo.token || auth === `Bearer ${repo.token}`);
    if (!repo || !authorised) {
      // As huggingface.co: 401 without a token, 404 with one, for missing and private alike.
      return this.fail(res, auth ? 404 : 401, 'RepositoryNotFound', 'Repository not found');
    }
    const revision = decodeURIComponent(api ? parts[4] : parts[3]);
    if (revision !== 'main' && revision !== repo.sha) return this.fail(res, 404, 'RevisionNotFound', 'Invalid rev id');

    if (api?.[3] === 'revision') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return void res.end(
        JSON.stringify({ _id: 'x', id, sha: repo.sha, private: Boolean(repo.token), gated: repo.gated ?? false, downloads: 0, likes: 0, lastModified: '2024-01-01T00:00:00.000Z' }),
      );
    }
    if (api) {
      const entries = Object.entries(repo.files).map(([path, f]) => ({
        type: 'file',
        path,
        size: f.data.length,
        oid: f.lfs ? gitOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(f.data)}\n`)) : gitOid(f.data),
        ...(f.lfs ? { lfs: { oid: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}),
      }));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify(entries));
    }

    const name = decodeURIComponent(parts[4]);
    if (repo.gated) return this.fail(res, auth ? 403 : 401, 'GatedRepo', `Access to model ${id} is restricted.`);
    const file = repo.files[name];
    if (!file) return this.fail(res, 404, 'EntryNotFound', 'Entry not found');
    const linked = { 'X-Repo-Commit': repo.sha, 'X-Linked-Size': String(file.data.length) };
    if (file.lfs) {
      res.writeHead(302, { ...linked, 'X-Linked-Etag': `"${sha256(file.data)}"`, Location: `/cdn/${id}/${encodeURIComponent(name)}` });
      return void res.end();
    }
    this.serveBytes(req, res, name, file, { ...linked, ETag: `"${gitOid(file.data)}"` });
  }

  private serveBytes(req: http.IncomingMessage, res: http.ServerResponse, name: string, file: FakeFile, headers: Record<string, string>): void {
    const data = this.corrupt.get(name) ?? file.data;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Math.min(Number(range[2]), data.length - 1) : data.length - 1;
    const body = data.subarray(start, end + 1);
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Accept-Ranges': 'bytes',
      'Content-Length': String(body.length),
      ...(range ? { 'Content-Range': `bytes ${start}-${end}/${data.length}` } : {}),
    });
    const drop = this.drops.get(name);
    if (drop && drop.times > 0 && body.length > 1) {
      drop.times--;
      // Send part of the body, then cut the connection once it has left.
      return void res.write(body.subarray(0, Math.min(drop.after, body.length - 1)), () => res.socket?.destroy());
    }
    res.end(body);
  }
}
