/**
 * The local web chat: one page plus the JSON API it uses, on node:http.
 * Routing, the checks every request passes, start and stop. Loaded by the
 * registry entry (index.ts) only when the surface is switched on.
 */
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RunningSurface, SurfaceContext } from '../../src/assistant/surface.js';
import { UserInputError } from '../../src/errors.js';
import { WebApi } from './api.js';
import { ensureSession } from './conversation.js';
import { healthRoutes } from './health.js';
import { HttpError, checkOrigin, isLoopback, publicError, sendError, setSecurityHeaders } from './http.js';
import { TurnStore, type TurnStoreOptions } from './progress.js';
import { StaticFiles } from './static.js';

type Method = 'GET' | 'POST';
type Handler = (req: IncomingMessage, res: ServerResponse, params: string[]) => void | Promise<void>;

interface Route {
  method: Method;
  path: RegExp;
  handler: Handler;
}

const TURN = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})';

export interface WebOptions {
  /** Bounds of the in-memory turn store (defaults: 1000 turns, 1 hour, 256 MiB of overlays). */
  turns?: TurnStoreOptions;
}

export async function startWeb(ctx: SurfaceContext, options: WebOptions = {}): Promise<RunningSurface> {
  const { host, port } = ctx.config.web;
  const logger = ctx.logger.child({ surface: 'web' });
  const files = await StaticFiles.load();
  const turns = new TurnStore(options.turns);
  const api = new WebApi({ ...ctx, logger }, turns);
  const loopback = isLoopback(host);

  const routes: Route[] = [
    ...healthRoutes(ctx),
    { method: 'GET', path: /^\/api\/model$/, handler: (_req, res) => api.model(res) },
    { method: 'GET', path: /^\/api\/conversation$/, handler: (req, res) => api.conversation(req, res) },
    { method: 'POST', path: /^\/api\/conversation\/reset$/, handler: (req, res) => api.reset(req, res) },
    {
      method: 'GET',
      path: /^\/api\/conversation\/turns\/(\d{1,4})\/(thumbnail|overlay)$/,
      handler: (req, res, [index, which]) => api.pastImage(req, res, Number(index), which as 'thumbnail' | 'overlay'),
    },
    { method: 'POST', path: /^\/api\/turns$/, handler: (req, res) => api.createTurn(req, res) },
    { method: 'GET', path: new RegExp(`^/api/turns/${TURN}$`), handler: (req, res, [id]) => api.getTurn(req, res, id!) },
    { method: 'GET', path: new RegExp(`^/api/turns/${TURN}/events$`), handler: (req, res, [id]) => api.events(req, res, id!) },
    { method: 'GET', path: new RegExp(`^/api/turns/${TURN}/overlay$`), handler: (req, res, [id]) => api.overlay(req, res, id!) },
  ];

  function serveStatic(req: IncomingMessage, res: ServerResponse, path: string): void {
    // The page gets its session cookie up front, so its first upload already belongs to it.
    if (path === '/') ensureSession(req, res);
    files.serve(req, res, path);
  }

  async function route(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const method = req.method ?? '';
    if (method !== 'GET' && method !== 'POST') {
      throw new HttpError(405, 'method_not_allowed', `Method ${method} is not allowed here.`, { Allow: 'GET, POST' });
    }
    if (files.has(path)) {
      if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', `Method ${method} is not allowed here.`, { Allow: 'GET' });
      serveStatic(req, res, path);
      return;
    }
    const matching = routes.filter((r) => r.path.test(path));
    const match = matching.find((r) => r.method === method);
    if (!match) {
      if (matching.length > 0) {
        const allow = matching.map((r) => r.method).join(', ');
        throw new HttpError(405, 'method_not_allowed', `Method ${method} is not allowed here.`, { Allow: allow });
      }
      throw new HttpError(404, 'not_found', `Nothing at ${path}.`);
    }
    await match.handler(req, res, match.path.exec(path)!.slice(1));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let path = '/';
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
      setSecurityHeaders(res);
      checkOrigin(req, loopback);
      await route(req, res, path);
    } catch (error) {
      const { status, code, message } = publicError(error);
      if (code === 'internal') logger.error({ err: error, method: req.method, path }, 'web request failed');
      else logger.debug({ status, code, method: req.method, path }, 'web request refused');
      const headers = error instanceof HttpError ? error.headers : {};
      sendError(res, new HttpError(status, code, message, headers));
      // A body left unread by a refusal is discarded, so the connection stays usable; an oversized one is cut instead.
      if (!req.complete && headers.Connection !== 'close') req.resume();
    }
  }

  const server = createServer((req, res) => void handle(req, res));
  server.on('clientError', (_error, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE' || error.code === 'EACCES' || error.code === 'EADDRNOTAVAIL'
          ? new UserInputError(
              `The web chat cannot listen on ${host}:${port} (${error.code}). Set web.port (LISABOT_WEB_PORT) ` +
                'to a free port (0 picks one), or web.host (LISABOT_WEB_HOST) to an address of this machine.',
              'config_invalid',
            )
          : error,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${urlHost}:${address.port}/`;
  logger.debug({ url }, 'web chat listening');

  let stopping: Promise<void> | undefined;
  return {
    name: 'web',
    url,
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        turns.cancelAll();
        server.close(() => resolve());
        // Idle keep-alive sockets and open event streams would otherwise hold close() open.
        server.closeAllConnections();
      });
      return stopping;
    },
  };
}
