/**
 * The Slack surface, as the registry (adapters/index.ts) lists it: on when
 * SLACK_BOT_TOKEN is set, with SLACK_APP_TOKEN (`slack.mode: socket`) or
 * SLACK_SIGNING_SECRET (`slack.mode: http`). @slack/bolt is loaded by `start`
 * only.
 *
 * The skeleton every surface shares: index.ts (this entry), start.ts (connect,
 * stop; app.ts wires Bolt to listeners/), incoming.ts (a message -> IncomingTurn;
 * files.ts for its images), conversation.ts (threads and channels),
 * progress.ts (the "thinking…" message), outgoing.ts (the answer and the
 * overlay upload). Here also: every user-visible text (text.ts) and one
 * thread turn from event to answer (converse.ts).
 */
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { fields } from '../../src/config/index.js';
import type { SurfaceEntry } from '../surface.js';

const settings = fields.section({
  mode: fields.enumOf(['socket', 'http']),
  port: fields.int(0, 65535),
  apiUrl: fields.httpUrl(),
  fileHosts: fields.list(fields.hostName()),
  threadRepliesWithoutMention: fields.bool(),
});

export type SlackSettings = z.infer<typeof settings>;

declare module '../../src/config/schema.js' {
  interface SurfaceSettings {
    slack: SlackSettings;
  }
}

export const slack: SurfaceEntry<SlackSettings> = {
  name: 'slack',
  section: settings,
  defaultsFile: fileURLToPath(new URL('./defaults.yaml', import.meta.url)),
  secrets: ['SLACK_BOT_TOKEN', 'SLACK_APP_TOKEN', 'SLACK_SIGNING_SECRET'],
  // What Bolt and the Web API client call them in the objects they log.
  secretKeys: ['botToken', 'appToken', 'signingSecret'],
  switchedOnBy: 'SLACK_BOT_TOKEN is set',
  enabled: (config) => Boolean(config.secrets.SLACK_BOT_TOKEN),
  // Said when the config loads, not at the first message.
  check(settings, secrets, origin) {
    if (!secrets.SLACK_BOT_TOKEN) return [];
    if (settings.mode === 'socket' && !secrets.SLACK_APP_TOKEN) {
      return [
        `${origin('mode')} is socket, which needs SLACK_APP_TOKEN (an xapp- token) as well as SLACK_BOT_TOKEN; ` +
          'set it, or use slack.mode http with SLACK_SIGNING_SECRET',
      ];
    }
    if (settings.mode === 'http' && !secrets.SLACK_SIGNING_SECRET) {
      return [
        `${origin('mode')} is http, which needs SLACK_SIGNING_SECRET as well as SLACK_BOT_TOKEN; ` +
          'set it, or use slack.mode socket with SLACK_APP_TOKEN',
      ];
    }
    return [];
  },
  async start(ctx) {
    const { startSlack } = await import('./start.js');
    return startSlack(ctx);
  },
};
