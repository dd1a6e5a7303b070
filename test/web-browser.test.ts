import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeAssistant } from './fakes/assistant.js';
import { CHROMIUM, TEST_LIMITS, type TestWeb, chromiumAvailability, shapesPng, startTestWeb, startToyWeb } from './helpers/web.js';

const availability = chromiumAvailability();

/** The parts of an HTMLImageElement the checks read (the tests compile without the DOM library). */
interface Img {
  complete: boolean;
  naturalWidth: number;
  naturalHeight: number;
  alt: string;
}

describe.skipIf(availability.skip)('web chat in Chromium', () => {
  let web: TestWeb;
  let browser: Browser;
  let png: Buffer;

  beforeAll(async () => {
    // End to end: the real runtime over a generated toy pack.
    web = await startToyWeb();
    png = await shapesPng();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await web?.stop();
  });

  /** A fresh browser context (its own cookie, so its own session) on the chat page, recording page errors. */
  async function openChat(options: { url?: string; withoutEventSource?: boolean } = {}): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
    const page = await context.newPage();
    // A browser without Server-Sent Events: the page must fall back to polling.
    if (options.withoutEventSource) await page.addInitScript('delete window.EventSource;');
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    await page.goto(options.url ?? web.url);
    await expect.poll(() => page.locator('#model-name').textContent()).not.toBe('…');
    return { page, problems };
  }

  /** Waits until the n-th turn (1-based) has its answer and its overlay image is decoded. */
  async function waitForOverlay(page: Page, n: number): Promise<{ naturalWidth: number; naturalHeight: number; alt: string }> {
    const overlay = page.locator(`#log > li:nth-child(${n}) img.overlay`);
    await overlay.waitFor();
    // Loaded and decoded: an <img> whose bytes did not arrive or did not decode has naturalWidth 0.
    await expect.poll(() => overlay.evaluate((img: Img) => img.complete && img.naturalWidth > 0)).toBe(true);
    return overlay.evaluate((img: Img) => ({ naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight, alt: img.alt }));
  }

  it('uploads, asks, shows the answer with its overlay, and answers a follow-up on the same image', async () => {
    const { page, problems } = await openChat();
    const before = web.received.length;

    const banner = page.locator('#demo-banner');
    await expect.poll(() => banner.isVisible()).toBe(true);
    expect(await banner.textContent()).toMatch(/Demo model.*not LISA.*palette colours/s);

    await page.locator('#image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: png });
    await page.locator('#preview-img').waitFor();
    expect(await page.locator('#preview-img').getAttribute('alt')).toBe('Preview of shapes.png');

    await page.getByLabel('Your question').fill('where is the red square?');
    await page.getByLabel('Your question').press('Enter');

    const first = await waitForOverlay(page, 1);
    expect([first.naturalWidth, first.naturalHeight]).toEqual([96, 64]);
    // The red square is drawn (and marked) in blue: red on red would not show.
    expect(first.alt).toMatch(/mask 1 drawn in blue/);
    const firstAnswer = page.locator('#log > li:nth-child(1) .answer');
    expect(await firstAnswer.textContent()).toContain('\u{1F7E6}');
    expect(await firstAnswer.locator('.marker').getAttribute('aria-label')).toBe('mask 1 (drawn in blue)');
    expect(await page.locator('#log > li:nth-child(1) .legend').textContent()).toMatch(/mask 1 \(drawn in blue\).*600 px/);
    expect(await page.locator('#log > li:nth-child(1) img.thumb').getAttribute('alt')).toBe('Your image: shapes.png');
    // The picker is cleared after sending, and the question box is ready for the follow-up.
    expect(await page.locator('#preview').isHidden()).toBe(true);
    expect(await page.getByLabel('Your question').inputValue()).toBe('');

    // The follow-up has no image of its own: the conversation keeps its image.
    await page.getByLabel('Your question').fill('and the blue one?');
    await page.getByRole('button', { name: 'Send' }).click();
    const second = await waitForOverlay(page, 2);
    expect(second.naturalWidth).toBe(96);
    expect(await page.locator('#log > li:nth-child(2) .legend').textContent()).toMatch(/1,?080 px/);
    expect(await page.locator('#log > li:nth-child(2) img.thumb').count()).toBe(0);
    // What reached the assistant: the image with the first question only, both in this browser's conversation.
    const turns = web.received.slice(before);
    expect(turns.map((t) => [t.text, t.images.length])).toEqual([
      ['where is the red square?', 1],
      ['and the blue one?', 0],
    ]);
    expect(turns[0]!.images[0]).toMatchObject({ kind: 'bytes', name: 'shapes.png' });
    expect(turns[1]!.conversationKey).toBe(turns[0]!.conversationKey);
    expect(turns[0]!.conversationKey).toMatch(/^web:[0-9a-f-]{36}$/);

    if (process.env.WEB_SCREENSHOT) {
      await page.waitForTimeout(200);
      await page.screenshot({ path: process.env.WEB_SCREENSHOT });
    }
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('shows a refusal next to its question, keeps working, and starts a new conversation', async () => {
    const { page, problems } = await openChat();
    const html = '<!DOCTYPE html><html><body>Not an image</body></html>';
    await page.locator('#image-input').setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: Buffer.from(html) });
    await page.getByLabel('Your question').fill('where is the red square?');
    await page.getByLabel('Your question').press('Enter');

    const refusal = page.locator('#log > li:nth-child(1) .error[role="alert"]');
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/Could not answer: .*HTML/);
    expect(await page.locator('#log > li:nth-child(1) .question').textContent()).toBe('where is the red square?');

    // The refused file goes back into the picker; a good one replaces it and is answered.
    await page.locator('#image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: png });
    await page.getByLabel('Your question').fill('where is the red square?');
    await page.getByLabel('Your question').press('Enter');
    await waitForOverlay(page, 2);

    await page.getByRole('button', { name: 'New conversation' }).click();
    await expect.poll(() => page.locator('#log > li').count()).toBe(0);
    // A new conversation has no image: asking without one is stopped with a hint before anything is sent.
    await page.getByLabel('Your question').fill('and the blue one?');
    await page.getByLabel('Your question').press('Enter');
    await expect.poll(() => page.locator('#composer-error').textContent()).toMatch(/Add an image first/);
    expect(await page.locator('#log > li').count()).toBe(0);

    // The refusal was an HTTP 422 the page showed: the browser logs that as a failed resource, nothing else.
    expect(problems.filter((p) => !/status of 422/.test(p))).toEqual([]);
    await page.context().close();
  });

  it('shows the queue position while a turn waits, over SSE and by polling', async () => {
    // A FakeAssistant whose queue the test holds, to see the page while the turn waits.
    const assistant = new FakeAssistant(TEST_LIMITS);
    const held = await startTestWeb({ assistant });
    try {
      for (const withoutEventSource of [false, true]) {
        const release = assistant.hold();
        const { page, problems } = await openChat({ url: held.url, withoutEventSource });
        expect(await page.evaluate('"EventSource" in window')).toBe(!withoutEventSource);
        await page.locator('#image-input').setInputFiles({ name: 'shapes.png', mimeType: 'image/png', buffer: png });
        await page.getByLabel('Your question').fill('where is the blue square?');
        await page.getByLabel('Your question').press('Enter');
        const status = page.locator('#log > li:nth-child(1) .status');
        await expect.poll(() => status.textContent()).toBe('Queued — position 1');
        expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);
        release();
        const overlay = await waitForOverlay(page, 1);
        expect(overlay.alt).toMatch(/mask 1 drawn in red/);
        expect(await page.locator('#log > li:nth-child(1) .legend').textContent()).toMatch(/1,?080 px/);
        expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(false);
        expect(problems).toEqual([]);
        await page.context().close();
      }
    } finally {
      await held.stop();
    }
  });
});
