/**
 * A small HTTP server with only `/healthz`, `/readyz` and `/metrics`, for a
 * process without the web chat: each `lisa-bot worker`, and `lisa-bot serve`
 * on Discord or Slack alone. The routes are the web chat's (routes.ts).
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { envVarName } from '../config/env.js';
import { UserInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { healthRoutes, json, writeHealthReply } from './routes.js';

export interface HealthServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  readiness: Readiness;
  /**
   * The config key of the port, named when it cannot be listened on
   * (e.g. 'worker.metricsPort'); its host key is the same with Host for Port.
   */
  field?: string;
  logger?: Logger;
}

export interface HealthServer {
  /** e.g. http://127.0.0.1:9465/ (with the real port when 0 was asked for). */
  url: string;
  close(): Promise<void>;
}

const LISTEN_REFUSALS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const { host, port, logger } = options;
  const routes = healthRoutes(options);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = '/';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const route = routes.get(path);
      if (!route) {
        writeHealthReply(res, json(404, { error: { code: 'not_found', message: `Nothing at ${path}.` } }));
      } else if (req.method !== 'GET') {
        const message = `Method ${req.method} is not allowed here.`;
        writeHealthReply(res, json(405, { error: { code: 'method_not_allowed', message } }), { Allow: 'GET' });
      } else {
        writeHealthReply(res, await route());
      }
    } catch (error) {
      logger?.error({ err: error, method: req.method, path }, 'health request failed');
      if (res.headersSent) res.destroy();
      else writeHealthReply(res, json(500, { error: { code: 'internal', message: 'This health check failed; see the server log.' } }));
    }
    // A body nobody reads (a POST refused above) is discarded, so the connection stays usable.
    if (!req.complete) req.resume();
  }

  const server = createServer((req, res) => void handle(req, res));
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(listenError(error, options));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Later server errors (none expected once listening) are logged, never an unhandled 'error' event.
  server.on('error', (error) => logger?.error({ err: error }, 'health server error'));

  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}/`;
  logger?.debug({ url }, 'health server listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Scrapers keep connections alive between scrapes; they would hold close() open.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listenError(error: NodeJS.ErrnoException, { host, port, field }: HealthServerOptions): Error {
  if (!error.code || !LISTEN_REFUSALS.has(error.code)) return error;
  let fix = 'Choose a free port, or an address of this machine.';
  if (field) {
    const hostField = field.replace(/Port$/, 'Host');
    fix =
      `Set ${field} (${envVarName(field.split('.'))}) to a free port, ` +
      `or ${hostField} (${envVarName(hostField.split('.'))}) to an address of this machine.`;
  }
  return new UserInputError(`The health server (/healthz, /readyz, /metrics) cannot listen on ${host}:${port} (${error.code}). ${fix}`, 'config_invalid');
}
