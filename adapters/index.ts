/**
 * The registry of chat surfaces. `lisa-bot serve` starts every entry that is
 * switched on, and the config loader reads each one's section and secrets from
 * here (handed in by the CLI: the core, src/, never imports adapters). Adding
 * a surface is a folder adapters/<name>/ and one line below: docs/adapters.md.
 */
import { discord } from './discord/index.js';
import { slack } from './slack/index.js';
import type { SurfaceEntry } from './surface.js';
import { web } from './web/index.js';

export const surfaces: readonly SurfaceEntry[] = [web, discord, slack];

/** The key names log lines must never show for the surfaces: their secrets' variables and their SDKs' names for them. */
export const surfaceSecretKeys: readonly string[] = surfaces.flatMap((s) => [...s.secrets, ...(s.secretKeys ?? [])]);

export type { SurfaceEntry } from './surface.js';
