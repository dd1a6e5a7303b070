/**
 * `/metrics` (Prometheus text) and `/readyz` on the web chat's server, from
 * what `lisa-bot serve` hands the surface; absent from the context, absent
 * here (404). `/healthz` (alive) stays in start.ts: it needs nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SurfaceContext } from '../../src/assistant/surface.js';
import { sendJson } from './http.js';

interface HealthRoute {
  method: 'GET';
  path: RegExp;
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;
}

export function healthRoutes(ctx: Pick<SurfaceContext, 'metrics' | 'readiness'>): HealthRoute[] {
  const routes: HealthRoute[] = [];
  const { metrics, readiness } = ctx;
  if (metrics) {
    routes.push({
      method: 'GET',
      path: /^\/metrics$/,
      handler: async (_req, res) => {
        const { contentType, text } = await metrics.scrape();
        const body = Buffer.from(text);
        res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': String(body.length), 'Cache-Control': 'no-store' });
        res.end(body);
      },
    });
  }
  if (readiness) {
    routes.push({
      method: 'GET',
      path: /^\/readyz$/,
      handler: (_req, res) => {
        const state = readiness.state();
        sendJson(res, state.ready ? 200 : 503, state);
      },
    });
  }
  return routes;
}
