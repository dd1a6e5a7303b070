/**
 * What a chat surface is to the registry (adapters/index.ts): its name, its
 * secrets, its section of the config file, whether it is switched on, and how
 * to start it. An entry is cheap to import: the surface's platform SDK is
 * loaded by `start` (a dynamic import of its start.ts), so `lisa-bot serve`
 * loads only the SDKs of the surfaces it starts.
 */
import type { RunningSurface, SurfaceContext } from '../src/assistant/surface.js';
import type { Config, Secrets, SurfaceConfig } from '../src/config/index.js';

export interface SurfaceEntry<Settings = unknown> extends SurfaceConfig {
  /** Key names its SDK gives secrets (`botToken`), redacted in logs besides `secrets`. */
  readonly secretKeys?: readonly string[];
  /** What switches it on, in the words of the config ("DISCORD_TOKEN is set"), for "nothing to serve". */
  readonly switchedOnBy: string;
  check?(settings: Settings, secrets: Secrets, origin: (key: string) => string): string[];
  enabled(config: Config): boolean;
  start(ctx: SurfaceContext): Promise<RunningSurface>;
}
