/**
 * Errors as log fields. discord.js errors carry the request body, overlay
 * bytes included; a log line gets the name, message, codes and route only.
 */
import { DiscordAPIError, HTTPError } from 'discord.js';

export function errorFields(error: unknown): { err: unknown } {
  if (error instanceof DiscordAPIError || error instanceof HTTPError) {
    const { name, message, status, method, url } = error;
    const code = error instanceof DiscordAPIError ? error.code : undefined;
    return { err: { type: name, message, status, method, url: url.replace(/\/webhooks\/(\d+)\/[^/?]+/, '/webhooks/$1/[token]'), ...(code !== undefined ? { code } : {}) } };
  }
  return { err: error };
}
