/**
 * `/lisa` end to end: acked before the work is done, answered in the channel,
 * ephemeral explanations when there is nothing to work on.
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

async function mentionWithImage(question: string): Promise<void> {
  const file = h.fake.addFile('shapes.png', await twoShapesPng(), { width: WIDTH, height: HEIGHT });
  await h.sendEvent(mention(h.fake, question, { files: [file] }), `Ev-${question}`);
  await h.surface.idle();
}

describe('slack: /lisa', () => {
  it('acks before the job is done, then posts the answer and the overlay in the channel', async () => {
    await mentionWithImage('red');
    const release = assistant.hold();

    const ack = await h.sendCommand('where is the blue square?');
    // The HTTP response (the ack) has arrived while the job is still held.
    expect(ack.status).toBe(200);
    expect(ack.json).toMatchObject({ response_type: 'ephemeral', text: 'Working on it…' });
    expect(h.fake.sharedUploads()).toHaveLength(1);

    release();
    await h.surface.idle();
    const uploads = h.fake.sharedUploads();
    expect(uploads).toHaveLength(2);
    expect(uploads[1]).toMatchObject({ channel: CHANNEL, threadTs: undefined });
    expect(await tintedShapes(uploads[1].bytes)).toEqual({ red: false, blue: true });

    const posted = h.fake.botMessages(CHANNEL).filter((m) => m.thread_ts === undefined);
    expect(posted).toHaveLength(1);
    expect(posted[0].text).toContain(`<@${USER}> asked: where is the blue square?`);
    expect(posted[0].text).toContain('Sure, it is');
    // The channel's conversation, not the thread's.
    expect(assistant.turns.at(-1)?.conversationKey).toBe(`slack:${h.fake.teamId}:${CHANNEL}:channel`);
  });

  it('goes on with the channel conversation: a follow-up needs no image', async () => {
    await mentionWithImage('red');
    await h.sendCommand('and the blue one?');
    await h.surface.idle();
    await h.sendCommand('now red again');
    await h.surface.idle();
    const uploads = h.fake.sharedUploads();
    expect(uploads).toHaveLength(3);
    expect(await tintedShapes(uploads[2].bytes)).toEqual({ red: true, blue: false });
  });

  it('explains, ephemerally, that there is no image to work on', async () => {
    const ack = await h.sendCommand('what is this?');
    expect(ack.status).toBe(200);
    await h.surface.idle();

    const [response] = h.fake.responses;
    expect(response.body).toMatchObject({ response_type: 'ephemeral' });
    expect(String(response.body.text)).toContain('no image to work on in this channel');
    expect(h.fake.of('chat.postMessage')).toHaveLength(0);
    expect(assistant.turns).toHaveLength(0);
  });

  it('answers about a file linked in the text', async () => {
    const file = h.fake.addFile('shapes.png', await twoShapesPng(), { width: WIDTH, height: HEIGHT });
    await h.sendCommand(`<${file.permalink}> which one is red?`);
    await h.surface.idle();

    expect(h.fake.of('files.info')).toHaveLength(1);
    expect(assistant.turns[0].text).toBe('which one is red?');
    const [upload] = h.fake.sharedUploads();
    expect(await tintedShapes(upload.bytes)).toEqual({ red: true, blue: false });
  });

  it("shows the assistant's refusals ephemerally and takes the public message back", async () => {
    await mentionWithImage('red');
    assistant.failNext = new Error('boom');
    await h.sendCommand('blue?');
    await h.surface.idle();

    await waitFor(() => h.fake.responses.length > 0, 'the ephemeral error');
    expect(h.fake.responses[0].body.text).toBe('Something went wrong on my side; please try again.');
    expect(h.fake.botMessages(CHANNEL).filter((m) => m.thread_ts === undefined)).toHaveLength(0);
    expect(h.fake.of('chat.delete')).toHaveLength(1);
  });

  it('explains usage when there is no question', async () => {
    await h.sendCommand('');
    await h.surface.idle();
    expect(String(h.fake.responses[0].body.text)).toContain('/lisa <question>');
  });

  it('tells the user to invite the bot when it cannot post in the channel', async () => {
    await mentionWithImage('red');
    h.fake.fail('chat.postMessage', 'not_in_channel');
    await h.sendCommand('blue?');
    await h.surface.idle();
    expect(String(h.fake.responses[0].body.text)).toContain('/invite @LISA');
  });
});
