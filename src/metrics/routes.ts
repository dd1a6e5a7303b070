/**
 * What `/healthz`, `/readyz` and `/metrics` answer, in one place for both
 * servers that carry them: the web chat's (adapters/web/health.ts) and the
 * health server of a worker, or of serve without the web chat (server.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Metrics } from './metrics.js';
import type { Readiness } from './readiness.js';

export interface HealthSources {
  metrics?: Metrics;
  readiness?: Readiness;
}

/** A response, ready to write: no route streams. */
export interface HealthReply {
  status: number;
  contentType: string;
  body: string;
}

/** GET-only routes by exact path; a source left out leaves its route out (404). */
export type HealthRoutes = ReadonlyMap<string, () => Promise<HealthReply>>;

export function healthRoutes({ metrics, readiness }: HealthSources): HealthRoutes {
  const routes = new Map<string, () => Promise<HealthReply>>();
  // Alive is not ready: a process that is loading its model or has lost Redis still answers 200 here.
  routes.set('/healthz', async () => json(200, { ok: true }));
  if (readiness) {
    routes.set('/readyz', async () => {
      const state = readiness.state();
      return json(state.ready ? 200 : 503, state);
    });
  }
  if (metrics) {
    routes.set('/metrics', async () => {
      const { contentType, text } = await metrics.scrape();
      return { status: 200, contentType, body: text };
    });
  }
  return routes;
}

export function json(status: number, body: unknown): HealthReply {
  return { status, contentType: 'application/json; charset=utf-8', body: JSON.stringify(body) };
}

/** Writes a reply; never cached, since each answer is about now. */
export function writeHealthReply(res: ServerResponse, reply: HealthReply, headers: Record<string, string> = {}): void {
  const body = Buffer.from(reply.body);
  res.writeHead(reply.status, {
    'Content-Type': reply.contentType,
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(body);
}
