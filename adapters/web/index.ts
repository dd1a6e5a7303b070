/**
 * The local web chat surface, as the registry (adapters/index.ts) lists it:
 * on unless `web.enabled` is false; `web.host` and `web.port` say where it
 * listens. The server itself is start.ts.
 *
 * The skeleton every surface shares: index.ts (this entry), start.ts (serve,
 * route, stop), incoming.ts (request -> IncomingTurn), conversation.ts (which
 * conversation: the browser session), progress.ts (the turn's state while the
 * page waits), outgoing.ts (the reply as the page shows it).
 */
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { fields } from '../../src/config/index.js';
import type { SurfaceEntry } from '../surface.js';

const settings = fields.section({
  enabled: fields.bool(),
  host: fields.nonEmpty(),
  port: fields.int(0, 65535),
});

export type WebSettings = z.infer<typeof settings>;

declare module '../../src/config/schema.js' {
  interface SurfaceSettings {
    web: WebSettings;
  }
}

export const web: SurfaceEntry<WebSettings> = {
  name: 'web',
  section: settings,
  defaultsFile: fileURLToPath(new URL('./defaults.yaml', import.meta.url)),
  secrets: [],
  switchedOnBy: 'web.enabled is true',
  enabled: (config) => config.web.enabled,
  async start(ctx) {
    const { startWeb } = await import('./start.js');
    return startWeb(ctx);
  },
};
