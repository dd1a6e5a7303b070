/**
 * The Slack surface end to end: the real Bolt app in HTTP mode, signed
 * requests, a fake Slack Web API, and an assistant with the toy pack's
 * behaviour. Mentions, thread follow-ups and retries.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeAssistant } from './fakes/slack/assistant.js';
import { CHANNEL, type Harness, USER, mention, startHarness, waitFor } from './fakes/slack/harness.js';
import { HEIGHT, WIDTH, tintedShapes, twoShapesPng } from './fakes/slack/images.js';

let h: Harness;
let assistant: FakeAssistant;

beforeEach(async () => {
  assistant = new FakeAssistant();
  h = await startHarness(assistant);
});

afterEach(async () => {
  await h.close();
});

async function postImage(name = 'shapes.png') {
  return h.fake.addFile(name, await twoShapesPng(), { width: WIDTH, height: HEIGHT });
}

/** Sends a mention with the image and waits for its overlay; returns the thread ts. */
async function askWithImage(question: string): Promise<string> {
  const file = await postImage();
  const event = mention(h.fake, question, { files: [file] });
  h.fake.addMessage({ channel: CHANNEL, ts: event.ts as string, text: event.text as string, user: USER, files: [file] });
  await h.sendEvent(event, 'Ev-first');
  await h.surface.idle();
  return event.ts as string;
}

describe('slack: app_mention', () => {
  it('answers in the thread and uploads an overlay whose mask is the named shape', async () => {
    const ts = await askWithImage('which part is red?');

    const [answer] = h.fake.botMessages(CHANNEL, ts);
    expect(answer.text).toContain('Sure, it is');
    expect(h.fake.botMessages(CHANNEL)).toHaveLength(1);

    const [upload] = h.fake.sharedUploads();
    expect(upload).toMatchObject({ channel: CHANNEL, threadTs: ts });
    expect(await tintedShapes(upload.bytes)).toEqual({ red: true, blue: false });

    // The file was fetched from the allowed host, with the bot token.
    expect(h.fake.fileRequests).toHaveLength(1);
    expect(h.fake.fileRequests[0].authorization).toBe(`Bearer ${h.fake.botToken}`);

    // The turn: the thread's key, the question without the mention, the file's metadata.
    const [turn] = assistant.turns;
    expect(turn.conversationKey).toBe(`slack:${h.fake.teamId}:${CHANNEL}:${ts}`);
    expect(turn.text).toBe('which part is red?');
    expect(turn.images[0]).toMatchObject({ kind: 'url', allowedHosts: ['127.0.0.1'], declared: { width: WIDTH, height: HEIGHT, contentType: 'image/png' } });
  });

  it('shows progress in the thinking message, then replaces it with the answer', async () => {
    const release = assistant.hold();
    const file = await postImage();
    const event = mention(h.fake, 'the red one?', { files: [file] });
    await h.sendEvent(event, 'Ev-progress');
    await waitFor(() => h.fake.of('chat.update').some((c) => String(c.args.text).includes('position 2')), 'the queue position');
    expect(h.fake.sharedUploads()).toHaveLength(0);
    release();
    await h.surface.idle();

    const [message] = h.fake.botMessages(CHANNEL, event.ts as string);
    expect(message.text).toContain('Sure, it is');
    const updates = h.fake.of('chat.update').map((c) => String(c.args.text));
    expect(updates.at(-1)).toContain('Sure, it is');
    // The overlay comes after the answer's text.
    const order = h.fake.calls.map((c) => c.method);
    expect(order.lastIndexOf('chat.update')).toBeLessThan(order.indexOf('files.completeUploadExternal'));
  });

  it('fetches the message when the event carries no files', async () => {
    const file = await postImage();
    const event = mention(h.fake, 'where is the blue square?');
    h.fake.addMessage({ channel: CHANNEL, ts: event.ts as string, text: event.text as string, user: USER, files: [file] });
    await h.sendEvent(event, 'Ev-nofiles');
    await h.surface.idle();

    expect(h.fake.of('conversations.history')).toHaveLength(1);
    const [upload] = h.fake.sharedUploads();
    expect(await tintedShapes(upload.bytes)).toEqual({ red: false, blue: true });
  });

  it('delivered twice (a retry) gives one answer', async () => {
    const file = await postImage();
    const event = mention(h.fake, 'red?', { files: [file] });
    const first = await h.sendEvent(event, 'Ev-retried');
    const retry = await h.sendEvent(event, 'Ev-retried', { retryNum: 1 });
    expect([first.status, retry.status]).toEqual([200, 200]);
    await h.surface.idle();

    expect(h.fake.of('chat.postMessage')).toHaveLength(1);
    expect(h.fake.sharedUploads()).toHaveLength(1);
    expect(assistant.turns).toHaveLength(1);
  });

  it('never posts a job twice, even from two events for the same message', async () => {
    const file = await postImage();
    const event = mention(h.fake, 'red?', { files: [file] });
    await h.sendEvent(event, 'Ev-a');
    await h.sendEvent(event, 'Ev-b');
    await h.surface.idle();

    expect(h.fake.botMessages(CHANNEL)).toHaveLength(1);
    expect(h.fake.sharedUploads()).toHaveLength(1);
    // The second "thinking…" message was taken back.
    expect(h.fake.of('chat.postMessage')).toHaveLength(2);
    expect(h.fake.of('chat.delete')).toHaveLength(1);
  });

  it('ignores messages from bots', async () => {
    const file = await postImage();
    await h.sendEvent({ ...mention(h.fake, 'red?', { files: [file] }), bot_id: 'BOTHER001' }, 'Ev-bot');
    await h.surface.idle();
    expect(h.fake.of('chat.postMessage')).toHaveLength(0);
    expect(assistant.turns).toHaveLength(0);
  });
});

describe('slack: thread follow-ups', () => {
  it('a mention naming another colour moves the mask', async () => {
    const ts = await askWithImage('the red one');
    const followUp = mention(h.fake, 'and now the blue one', { threadTs: ts });
    h.fake.addMessage({ channel: CHANNEL, ts: followUp.ts as string, thread_ts: ts, text: followUp.text as string, user: USER });
    await h.sendEvent(followUp, 'Ev-follow');
    await h.surface.idle();

    expect(h.fake.of('conversations.replies')).toHaveLength(1);
    expect(h.fake.botMessages(CHANNEL, ts)).toHaveLength(2);
    const uploads = h.fake.sharedUploads();
    expect(uploads).toHaveLength(2);
    expect(uploads[1].threadTs).toBe(ts);
    expect(await tintedShapes(uploads[1].bytes)).toEqual({ red: false, blue: true });
    expect(assistant.turns[1].conversationKey).toBe(assistant.turns[0].conversationKey);
  });

  it('a message without a mention continues a thread the bot is in, and only such threads', async () => {
    const ts = await askWithImage('red');
    const reply = { type: 'message', channel: CHANNEL, channel_type: 'channel', user: USER, text: 'what about blue?', ts: h.fake.nextTs(), thread_ts: ts };
    await h.sendEvent(reply, 'Ev-plain');
    const elsewhere = { ...reply, ts: h.fake.nextTs(), thread_ts: '1600000000.000100', text: 'blue?' };
    await h.sendEvent(elsewhere, 'Ev-elsewhere');
    const topLevel = { ...reply, ts: h.fake.nextTs(), thread_ts: undefined, text: 'blue?' };
    await h.sendEvent(topLevel, 'Ev-top');
    await h.surface.idle();

    expect(h.fake.botMessages(CHANNEL)).toHaveLength(2);
    const uploads = h.fake.sharedUploads();
    expect(uploads[1].threadTs).toBe(ts);
    expect(await tintedShapes(uploads[1].bytes)).toEqual({ red: false, blue: true });
  });

  it('a thread reply that mentions the bot is answered once (app_mention), not twice', async () => {
    const ts = await askWithImage('red');
    const followUp = mention(h.fake, 'blue?', { threadTs: ts, files: [] });
    await h.sendEvent({ ...followUp, type: 'message', channel_type: 'channel' }, 'Ev-msg');
    await h.sendEvent(followUp, 'Ev-mention');
    await h.surface.idle();
    expect(h.fake.botMessages(CHANNEL, ts)).toHaveLength(2);
  });
});

describe('slack: errors', () => {
  it("shows the assistant's message for the user's mistakes", async () => {
    await h.sendEvent(mention(h.fake, 'what is this?', { files: [] }), 'Ev-noimage');
    await h.surface.idle();
    const [message] = h.fake.botMessages(CHANNEL);
    expect(message.text).toContain('There is no image in this conversation yet');
  });

  it('says something went wrong, without details, for anything else', async () => {
    assistant.failNext = new Error('engine exploded at /secret/path.ts:12');
    await h.sendEvent(mention(h.fake, 'red?', { files: [await postImage()] }), 'Ev-boom');
    await h.surface.idle();
    const [message] = h.fake.botMessages(CHANNEL);
    expect(message.text).toBe('Something went wrong on my side; please try again.');
  });

  it('a file URL answering an HTML login page names the missing files:read scope', async () => {
    const file = h.fake.addFile('shapes.png', await twoShapesPng(), { loginPage: true });
    await h.sendEvent(mention(h.fake, 'red?', { files: [file] }), 'Ev-html');
    await h.surface.idle();
    const [message] = h.fake.botMessages(CHANNEL);
    expect(message.text).toContain('files:read');
  });

  it('never sends the bot token to a host outside slack.fileHosts', async () => {
    const file = h.fake.addFile('shapes.png', await twoShapesPng(), { host: 'localhost' });
    await h.sendEvent(mention(h.fake, 'red?', { files: [file] }), 'Ev-foreign');
    await h.surface.idle();

    expect(h.fake.fileRequests.filter((r) => r.authorization !== undefined)).toHaveLength(0);
    expect(assistant.turns[0].images[0]).not.toHaveProperty('headers');
    expect(h.fake.sharedUploads()).toHaveLength(0);
    expect(h.fake.botMessages(CHANNEL)).toHaveLength(1);
  });

  it('never logs the bot token', async () => {
    await askWithImage('red');
    expect(h.logs.length).toBeGreaterThan(0);
    expect(h.logs.join('')).not.toContain(h.fake.botToken);
  });
});
