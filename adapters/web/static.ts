/**
 * The page's static files (adapters/web/public), read once at start. Only the
 * files listed here are served, by exact URL path, so no request can reach
 * anything else on disk.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setSecurityHeaders } from './http.js';

const PUBLIC_DIR = new URL('./public/', import.meta.url);

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/net.js': { file: 'net.js', type: 'text/javascript; charset=utf-8' },
  '/log.js': { file: 'log.js', type: 'text/javascript; charset=utf-8' },
  '/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

interface Asset {
  data: Buffer;
  type: string;
  etag: string;
}

export class StaticFiles {
  private constructor(private readonly assets: ReadonlyMap<string, Asset>) {}

  static async load(): Promise<StaticFiles> {
    const assets = new Map<string, Asset>();
    for (const [urlPath, { file, type }] of Object.entries(FILES)) {
      const data = await readFile(new URL(file, PUBLIC_DIR));
      const etag = `"${createHash('sha256').update(data).digest('base64url').slice(0, 22)}"`;
      assets.set(urlPath, { data, type, etag });
    }
    return new StaticFiles(assets);
  }

  has(urlPath: string): boolean {
    return this.assets.has(urlPath);
  }

  serve(req: IncomingMessage, res: ServerResponse, urlPath: string): void {
    const asset = this.assets.get(urlPath);
    if (!asset) throw new Error(`no static file for ${urlPath}`);
    setSecurityHeaders(res, asset.type.startsWith('text/html'));
    res.setHeader('ETag', asset.etag);
    res.setHeader('Cache-Control', 'no-cache');
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': String(asset.data.length) });
    res.end(asset.data);
  }
}
