/** The local web chat surface: `startWeb(ctx)` serves the page and its JSON API. */
export { startWeb, type WebOptions } from './server.js';
export type { PublicReply, PublicSegment, TurnState, TurnView } from './turns.js';
