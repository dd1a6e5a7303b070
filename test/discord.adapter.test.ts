/**
 * The Discord adapter's own behaviour, with a scripted assistant behind it:
 * progress, long answers, errors, the 15-minute interaction fallback, upload
 * limits.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserInputError } from '../src/errors.js';
import { ScriptedAssistant, scriptedReply } from './fakes/discord/assistant.js';
import { type Harness, originalResponse, repliesTo, sceneAttachment, startHarness } from './fakes/discord/harness.js';

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Discord adapter (scripted assistant)', () => {
  const scripted = new ScriptedAssistant();
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ assistant: scripted });
  });
  afterEach(() => {
    scripted.script = (turn) => scriptedReply(turn, 'Sure, it is 🟥.');
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('shows one "queued — position N" status while the job waits, edits it as it moves, and removes it after the answer', async () => {
    const { discord } = h;
    const moved = deferred();
    const finish = deferred();
    scripted.script = async (turn, options) => {
      options.onProgress?.({ type: 'queued', position: 3 });
      await moved.promise;
      options.onProgress?.({ type: 'queued', position: 2 });
      await finish.promise;
      options.onProgress?.({ type: 'started' });
      return scriptedReply(turn, 'Sure, it is 🟥.');
    };
    const asked = discord.userMessage({ content: 'what is red?', mention: true });
    const [status] = await repliesTo(h, asked.id);
    expect(status.content).toBe('⏳ queued — position 3');
    moved.resolve();
    await discord.waitFor(() => status.content === '⏳ queued — position 2', 'the edited status');
    finish.resolve();
    await discord.waitFor(() => discord.deleted.has(status.id), 'the status removed');
    const replies = discord.botMessages().filter((m) => m.message_reference?.message_id === asked.id);
    expect(replies.map((m) => m.content)).toEqual(['Sure, it is 🟥.']);
    expect(replies[0].attachments).toHaveLength(1);
    // One status message: posted once, edited, deleted.
    const statusPosts = discord.requests.filter((r) => r.method === 'POST' && r.body?.content?.startsWith('⏳'));
    expect(statusPosts).toHaveLength(1);
  });

  it('posts no status message for a job that starts at once', async () => {
    const { discord } = h;
    scripted.script = async (turn, options) => {
      options.onProgress?.({ type: 'queued', position: 1 });
      options.onProgress?.({ type: 'started' });
      return scriptedReply(turn, 'Sure, it is 🟥.');
    };
    const asked = discord.userMessage({ content: 'quick one', mention: true });
    const replies = await repliesTo(h, asked.id);
    expect(replies.map((m) => m.content)).toEqual(['Sure, it is 🟥.']);
    expect(discord.requests.some((r) => r.body?.content?.startsWith?.('⏳') && r.body?.message_reference?.message_id === asked.id)).toBe(false);
  });

  it('splits an answer over 2000 characters on line boundaries into a chain of replies, the overlay on the first', async () => {
    const { discord } = h;
    const lines = Array.from({ length: 90 }, (_, i) => `Line ${i}: ${'word '.repeat(8)}🟥`);
    const text = lines.join('\n');
    scripted.script = (turn) => scriptedReply(turn, text);
    const asked = discord.userMessage({ content: 'tell me everything', mention: true });
    const first = (await repliesTo(h, asked.id))[0];
    const parts = [first];
    while (parts.length < 3) {
      const next = await repliesTo(h, parts.at(-1)!.id);
      parts.push(next[0]);
    }
    expect(parts.every((m) => m.content.length <= 2000)).toBe(true);
    expect(parts.map((m) => m.attachments.length)).toEqual([1, 0, 0]);
    expect(parts.flatMap((m) => m.content.split('\n'))).toEqual(lines);
    // Only the first part pings the asker.
    expect(parts.map((m) => m.mentions.map((u) => u.id))).toEqual([[discord.alice.id], [], []]);
  });

  it('never pings @everyone from answer text', async () => {
    const { discord } = h;
    scripted.script = (turn) => scriptedReply(turn, 'Sure, @everyone, it is 🟥.');
    const asked = discord.userMessage({ content: 'ping?', mention: true });
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.content).toBe('Sure, @everyone, it is 🟥.');
    expect(answer.mention_everyone).toBe(false);
  });

  it('answers an unexpected failure with a short apology and logs it without request bodies', async () => {
    const { discord } = h;
    scripted.script = async () => {
      throw new Error('engine exploded at /secret/path');
    };
    const asked = discord.userMessage({ content: 'break it', mention: true });
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.content).toBe('Something went wrong on my side; please try again.');
    const logged = h.logs.map((line) => JSON.parse(line)).find((l) => l.msg === 'discord: turn failed');
    expect(logged.err.message).toBe('engine exploded at /secret/path');
  });

  it('shows a UserInputError message as it is', async () => {
    const { discord } = h;
    scripted.script = async () => {
      throw new UserInputError('LISA is busy: 100 questions are waiting. Try again in a few minutes.', 'queue_full');
    };
    const asked = discord.userMessage({ content: 'busy?', mention: true });
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.content).toBe('LISA is busy: 100 questions are waiting. Try again in a few minutes.');
  });

  it('tells users whose turn is cut short by a shutdown to ask again', async () => {
    const { discord } = h;
    scripted.script = (_turn, options) =>
      new Promise((_resolve, reject) => {
        options.signal?.addEventListener('abort', () => reject(new UserInputError('The request was cancelled.', 'cancelled')));
      });
    const asked = discord.userMessage({ content: 'slow one', mention: true });
    await h.assistant.until(() => h.assistant.received.some((r) => r.turn.requestId === asked.id));
    await h.restart();
    const [answer] = await repliesTo(h, asked.id);
    expect(answer.content).toBe('LISA is restarting; please ask again in a moment.');
  });

  it('asks for an overlay within the upload limit: 10 MiB for messages, the interaction attachment_size_limit for commands', async () => {
    const { discord } = h;
    const asked = discord.userMessage({ content: 'size?', mention: true, attachments: [await sceneAttachment(discord)] });
    await repliesTo(h, asked.id);
    expect(h.assistant.received.at(-1)!.options.overlay).toEqual({ maxBytes: 10 * 1024 * 1024 });
    const slash = discord.slash({ question: 'size?', image: await sceneAttachment(discord), attachmentSizeLimit: 26_214_400 });
    await originalResponse(h, slash);
    expect(h.assistant.received.at(-1)!.options.overlay).toEqual({ maxBytes: 26_214_400 });
  });

  it('answers an interaction older than 15 minutes in the channel, mentioning the user', async () => {
    const { discord } = h;
    const slash = discord.slash({ question: 'late?', image: await sceneAttachment(discord), createdAt: Date.now() - 16 * 60 * 1000 });
    const answer = await discord.waitFor(
      () => discord.botMessages().find((m) => m.content.startsWith(`<@${discord.alice.id}>`) && !m.interaction_metadata),
      'the channel answer',
    );
    expect(answer.content).toBe(`<@${discord.alice.id}> Sure, it is 🟥.`);
    expect(answer.mentions.map((u) => u.id)).toEqual([discord.alice.id]);
    expect(answer.attachments).toHaveLength(1);
    expect(slash.original).toBeUndefined();
  });

  it('/segment without an image in a channel whose conversation has none says how to add one', async () => {
    const { discord } = h;
    const thread = discord.startThread(discord.userMessage({ content: 'a thread' }).id);
    const slash = discord.slash({ question: 'where is the red thing?', channelId: thread });
    const answer = await originalResponse(h, slash);
    expect(answer.content).toBe("There is no image in this channel's conversation yet: add one with `/segment question:… image:…`.");
  });

  it('context menu on a message without an image explains, privately, without a modal', async () => {
    const { discord } = h;
    const target = discord.userMessage({ content: 'no picture here' });
    const menu = discord.contextMenu({ targetId: target.id });
    await discord.waitFor(() => menu.callbacks.length > 0, 'the reply');
    expect(menu.callbacks[0]).toMatchObject({ type: 4, data: { flags: 64, content: 'That message has no image. Use "Segment with LISA" on a message with a picture attached.' } });
  });

});
