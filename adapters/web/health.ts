/**
 * `/healthz`, `/readyz` and `/metrics` on the web chat's server, answered as
 * the health server answers them (src/metrics/routes.ts), from what
 * `lisa-bot serve` hands the surface; a source absent from the context is a
 * route absent here (404).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SurfaceContext } from '../../src/assistant/surface.js';
import { healthRoutes as sharedHealthRoutes, writeHealthReply } from '../../src/metrics/routes.js';

interface HealthRoute {
  method: 'GET';
  path: RegExp;
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

export function healthRoutes(ctx: Pick<SurfaceContext, 'metrics' | 'readiness'>): HealthRoute[] {
  return [...sharedHealthRoutes(ctx)].map(([path, reply]) => ({
    method: 'GET',
    path: new RegExp(`^${path}$`),
    handler: async (_req, res) => writeHealthReply(res, await reply()),
  }));
}
