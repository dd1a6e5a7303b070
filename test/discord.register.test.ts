/** `lisa-bot discord register`: the commands and the invite URL, against the fake Discord's REST API. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_PERMISSIONS, discordInviteUrl, registerDiscordCommands } from '../adapters/discord/register.js';
import { FakeDiscord } from './fakes/discord/server.js';

describe('registerDiscordCommands', () => {
  let discord: FakeDiscord;
  beforeAll(async () => {
    discord = await FakeDiscord.start();
  });
  afterAll(async () => {
    await discord?.close();
  });

  it('registers /segment and "Segment with LISA" globally', async () => {
    const result = await registerDiscordCommands({ token: discord.token, apiUrl: discord.apiUrl });
    expect(result).toMatchObject({ applicationId: discord.applicationId, scope: 'global' });
    expect(result.commands.map((c) => [c.name, c.type])).toEqual([['segment', 1], ['Segment with LISA', 3]]);
    const [segment] = discord.commands.get('global') as any[];
    // Required options come first (Discord's rule); the image is optional.
    expect(segment.options.map((o: any) => [o.name, o.type, o.required ?? false])).toEqual([
      ['question', 3, true],
      ['image', 11, false],
    ]);
    expect(result.inviteUrl).toBe(discordInviteUrl(discord.applicationId));
  });

  it('registers in one guild with --guild', async () => {
    const result = await registerDiscordCommands({ token: discord.token, apiUrl: discord.apiUrl, guildId: discord.guildId });
    expect(result.scope).toEqual({ guildId: discord.guildId });
    expect((discord.commands.get(discord.guildId) as any[]).map((c) => c.name)).toEqual(['segment', 'Segment with LISA']);
  });

  it('fails with the API error on a bad token', async () => {
    await expect(registerDiscordCommands({ token: 'wrong', apiUrl: discord.apiUrl })).rejects.toThrow(/401|Unauthorized/);
  });

  it('invites with View Channel, Send Messages (+ in Threads), Attach Files and Read Message History', () => {
    expect(BOT_PERMISSIONS).toBe(274878008320n);
    const url = new URL(discordInviteUrl('123'));
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: '123',
      scope: 'bot applications.commands',
      permissions: '274878008320',
      integration_type: '0',
    });
  });
});
