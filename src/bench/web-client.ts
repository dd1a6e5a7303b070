/**
 * A minimal client for the web chat's `POST /api/turns`: what the page's
 * upload does (multipart: `question` + `image`), over node:http with
 * keep-alive so the numbers are the server's time to accept, not TCP set-up.
 * The body is built before the clock starts: only the request is timed.
 */
import { Agent, request } from 'node:http';
import { randomBytes } from 'node:crypto';

export interface PostResult {
  status: number;
  /** Request start -> the response fully read. */
  ms: number;
  body: string;
}

export class TurnPoster {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });
  private readonly url: URL;

  constructor(baseUrl: string) {
    this.url = new URL('/api/turns', baseUrl);
  }

  body(question: string, image: Uint8Array, filename = 'photo.jpg'): { data: Buffer; contentType: string } {
    const boundary = `----lisabench${randomBytes(12).toString('hex')}`;
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="question"\r\n\r\n${question}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    return { data: Buffer.concat([head, image, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
  }

  post(body: { data: Buffer; contentType: string }): Promise<PostResult> {
    return new Promise((resolve, reject) => {
      const t0 = performance.now();
      const req = request(
        this.url,
        { method: 'POST', agent: this.agent, headers: { 'Content-Type': body.contentType, 'Content-Length': String(body.data.length) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body.data);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
