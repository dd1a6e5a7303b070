/**
 * The stored conversation through the web API: what a reloaded page needs to
 * show it again (turns, thumbnails, overlays), and the server instance a page
 * compares to tell a restart from a missing turn.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { BLUE_AREA, Client, shapesPng, toyWebForFile } from './helpers/web.js';

const web = toyWebForFile();
const png = await shapesPng();

describe('the stored conversation', () => {
  it('lists the turns with their answers, the image each new one brought, and redraws their overlays', async () => {
    const client = new Client(web.url);
    const first = await client.answered('where is the red square?', { data: png });
    const second = await client.answered('and the blue one?');
    expect(second.view.state).toBe('done');

    const { status, body } = await client.json('/api/conversation');
    expect(status).toBe(200);
    expect(body.hasImage).toBe(true);
    expect(body.instance).toBe(first.instance);
    expect(body.turns.map((t: any) => t.question)).toEqual(['where is the red square?', 'and the blue one?']);
    const [one, two] = body.turns;
    expect(one.reply.text).toBe(first.view.reply.text);
    expect(one.reply.segments).toEqual(first.view.reply.segments);
    expect(two.reply.segments).toEqual(second.view.reply.segments);
    // Only the turn that brought the image has a thumbnail; the follow-up is about the same one.
    expect(one.imageUrl).toMatch(/^\/api\/conversation\/turns\/0\/thumbnail\?at=\d+$/);
    expect(two.imageUrl).toBeUndefined();
    expect(body.currentImageUrl).toMatch(/^\/api\/conversation\/turns\/1\/thumbnail\?at=\d+$/);

    const thumb = await client.fetch(one.imageUrl);
    expect(thumb.status).toBe(200);
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 96, 64]);

    // Redrawn from the stored masks and colours: the same pixels as the overlay sent with the answer.
    for (const [past, live] of [
      [one, first],
      [two, second],
    ] as const) {
      const redrawn = await client.fetch(past.reply.overlayUrl);
      expect(redrawn.status).toBe(200);
      const sent = await client.fetch(live.view.reply.overlayUrl);
      const pixels = async (r: Response) => sharp(Buffer.from(await r.arrayBuffer())).raw().toBuffer();
      expect((await pixels(redrawn)).equals(await pixels(sent))).toBe(true);
    }

    // Another browser sees none of it.
    const other = new Client(web.url);
    expect((await other.json('/api/conversation')).body.turns).toEqual([]);
    expect((await other.fetch(one.imageUrl)).status).toBe(404);
    expect((await other.fetch(one.reply.overlayUrl)).status).toBe(404);
  });

  it('queues a follow-up sent before the first answer behind it, instead of "no image yet"', async () => {
    const client = new Client(web.url);
    const first = await client.ask('where is the red square?', { data: png });
    expect(first.status).toBe(202);
    const followUp = await client.ask('and the blue one?');
    expect(followUp.status).toBe(202);
    const [a, b] = [await client.settle(first.body.turnId), await client.settle(followUp.body.turnId)];
    expect([a.state, b.state]).toEqual(['done', 'done']);
    expect(b.reply.segments[0].area).toBe(BLUE_AREA);
  });

  it('is empty after a new conversation, and its old images are gone', async () => {
    const client = new Client(web.url);
    await client.answered('where is the red square?', { data: png });
    const before = (await client.json('/api/conversation')).body;
    const reset = await client.json('/api/conversation/reset', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(reset.status).toBe(200);
    const after = (await client.json('/api/conversation')).body;
    expect([after.turns, after.hasImage, after.currentImageUrl]).toEqual([[], false, undefined]);
    expect((await client.fetch(before.turns[0].imageUrl)).status).toBe(404);
  });

  it('says which server instance took a turn, so a page can tell a restart from a missing turn', async () => {
    const client = new Client(web.url);
    const { body } = await client.json('/api/conversation');
    expect(body.instance).toMatch(/^[0-9a-f-]{36}$/);
    const missing = await client.json('/api/turns/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toMatch(/restarted/);
  });
});
