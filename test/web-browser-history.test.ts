/**
 * The page after a reload and after a server restart: it shows the stored
 * conversation as it was, says plainly when a turn was lost in a restart (and
 * puts it back to send again), and shows which image follow-ups are about.
 */
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssistantPort, HandleOptions, IncomingTurn } from '../src/assistant/types.js';
import { CHROMIUM, TEST_LIMITS, type TestWeb, chromiumAvailability, shapesPng, startToyWeb } from './helpers/web.js';
import { drawShapes, encodeImage } from './helpers/toy.js';

const availability = chromiumAvailability();

/** The parts of an HTMLImageElement the checks read (the tests compile without the DOM library). */
interface Img {
  complete: boolean;
  naturalWidth: number;
  hidden: boolean;
}

/** While `hold` is set, turns stay queued without reaching the real assistant (as if stuck behind others). */
let hold: Promise<never> | undefined;
function holding(inner: AssistantPort): AssistantPort {
  return {
    handle(turn: IncomingTurn, options?: HandleOptions) {
      if (!hold) return inner.handle(turn, options);
      options?.onProgress?.({ type: 'queued', position: 2 });
      return hold;
    },
    resetConversation: (key) => inner.resetConversation(key),
    firstDelivery: (key, ttlMs) => inner.firstDelivery(key, ttlMs),
    hasImage: (key) => inner.hasImage(key),
    history: (key) => inner.history!(key),
    pastImage: (key, index, which) => inner.pastImage!(key, index, which),
    get model() {
      return inner.model;
    },
  };
}

describe.skipIf(availability.skip)('web chat in Chromium: reloads and restarts', () => {
  let web: TestWeb;
  let browser: Browser;
  let png: Buffer;

  beforeAll(async () => {
    web = await startToyWeb(TEST_LIMITS, { wrap: holding });
    png = await shapesPng();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    await web?.stop();
  });

  async function openChat(): Promise<{ page: Page; problems: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 1000 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(web.url);
    await expect.poll(() => page.locator('#model-name').textContent()).not.toBe('…');
    return { page, problems };
  }

  async function ask(page: Page, question: string, image?: { name: string; buffer: Buffer }): Promise<void> {
    if (image) await page.locator('#image-input').setInputFiles({ ...image, mimeType: 'image/png' });
    await page.getByLabel('Your question').fill(question);
    await page.getByLabel('Your question').press('Enter');
  }

  /** Whether the image is shown, loaded and decoded (an <img> whose bytes did not arrive has naturalWidth 0). */
  const loaded = (page: Page, selector: string) =>
    expect.poll(() => page.locator(selector).evaluate((img: Img) => !img.hidden && img.complete && img.naturalWidth > 0), { timeout: 10_000 }).toBe(true);

  it('shows the stored conversation after a reload: questions, answers, the image, the overlays', async () => {
    const { page, problems } = await openChat();
    await ask(page, 'where is the red square?', { name: 'shapes.png', buffer: png });
    await loaded(page, '#log > li:nth-child(1) img.overlay');
    await ask(page, 'and the blue one?');
    await loaded(page, '#log > li:nth-child(2) img.overlay');
    const answers = await page.locator('#log .answer').allTextContents();

    await page.reload();
    await expect.poll(() => page.locator('#log > li').count()).toBe(2);
    expect(await page.locator('#log .question').allTextContents()).toEqual(['where is the red square?', 'and the blue one?']);
    expect(await page.locator('#log .answer').allTextContents()).toEqual(answers);
    await loaded(page, '#log > li:nth-child(1) img.thumb');
    expect(await page.locator('#log > li:nth-child(2) img.thumb').count()).toBe(0);
    await loaded(page, '#log > li:nth-child(1) img.overlay');
    await loaded(page, '#log > li:nth-child(2) img.overlay');
    expect(await page.locator('#log > li:nth-child(2) .legend').textContent()).toMatch(/1,?080 px/);
    // Which image a follow-up is about.
    await loaded(page, '#current-image');
    expect(await page.locator('#drop-text').textContent()).toMatch(/Asking about this image/);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('after a restart mid-turn, says the turn was lost and puts it back; follow-ups show their image', async () => {
    const { page, problems } = await openChat();
    await ask(page, 'where is the red square?', { name: 'shapes.png', buffer: png });
    await loaded(page, '#log > li:nth-child(1) img.overlay');

    const other = await encodeImage(drawShapes(80, 80, [{ colour: 'green', kind: 'rect', x: 10, y: 10, w: 40, h: 40 }]), 'png');
    hold = new Promise<never>(() => {});
    await ask(page, 'and the green one here?', { name: 'green.png', buffer: other });
    await expect.poll(() => page.locator('#log > li:nth-child(2) .status').textContent()).toMatch(/Queued/);
    await web.restartWeb!();
    hold = undefined;

    const error = page.locator('#log > li:nth-child(2) .error');
    await expect.poll(() => error.textContent(), { timeout: 20_000 }).toMatch(/server restarted.*lost.*send it again/i);
    expect(await error.textContent()).not.toMatch(/another browser session/);
    // The lost question and its image are back in the composer, ready to send again.
    expect(await page.getByLabel('Your question').inputValue()).toBe('and the green one here?');
    expect(await page.locator('#preview-name').textContent()).toBe('green.png');
    // Without a new image, a follow-up is about the one the conversation has: shown, not assumed.
    await page.getByRole('button', { name: 'Remove image' }).click();
    await loaded(page, '#current-image');
    expect(await page.locator('#current-image').getAttribute('src')).toMatch(/^\/api\/conversation\/turns\/0\/thumbnail/);

    await ask(page, 'and the green one here?', { name: 'green.png', buffer: other });
    await loaded(page, '#log > li:nth-child(3) img.overlay');
    await expect.poll(() => page.locator('#current-image').getAttribute('src')).toMatch(/^\/api\/conversation\/turns\/1\/thumbnail/);
    expect(problems).toEqual([]);
    await page.context().close();
  });
});
