/** The Discord allow-lists (guilds, roles): refusals the user can read, and nothing reaches the assistant. */
import { afterEach, describe, expect, it } from 'vitest';
import { ScriptedAssistant } from './fakes/discord/assistant.js';
import { type Harness, repliesTo, startHarness } from './fakes/discord/harness.js';

describe('Discord allow-lists', () => {
  const scripted = new ScriptedAssistant();
  let h: Harness;
  afterEach(async () => {
    await h?.stop();
  });

  it('refuses in a guild that is not allowed, in reply or ephemerally', async () => {
    h = await startHarness({ assistant: scripted, configure: (c) => ({ ...c, discord: { ...c.discord, allowedGuilds: ['1'] } }) });
    const { discord } = h;
    const asked = discord.userMessage({ content: 'red?', mention: true });
    const [refused] = await repliesTo(h, asked.id);
    expect(refused.content).toBe('LISA is not enabled in this server.');
    const slash = discord.slash({ question: 'red?' });
    await discord.waitFor(() => slash.callbacks.length > 0, 'the refusal');
    expect(slash.callbacks[0]).toMatchObject({ type: 4, data: { flags: 64, content: 'LISA is not enabled in this server.' } });
    expect(h.assistant.received).toEqual([]);
  });

  it('answers members with an allowed role only', async () => {
    h = await startHarness({ assistant: scripted, configure: (c, d) => ({ ...c, discord: { ...c.discord, allowedRoles: [d.memberRoleId] } }) });
    const { discord } = h;
    const fromBob = discord.userMessage({ author: discord.bob, content: 'red?', mention: true });
    const [refused] = await repliesTo(h, fromBob.id);
    expect(refused.content).toBe("You don't have a role that may use LISA here.");
    const fromAlice = discord.userMessage({ content: 'red?', mention: true });
    const [answer] = await repliesTo(h, fromAlice.id);
    expect(answer.content).toBe('Sure, it is 🟥.');
    expect(h.assistant.received.map((r) => r.turn.user.id)).toEqual([discord.alice.id]);
  });
});
