/**
 * The page counts a question's length as the server does, in characters
 * (code points): a browser's maxlength counts UTF-16 units and would cut a
 * question of emoji at half the limit (issue 17, item 9).
 */
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, TEST_LIMITS, type TestWeb, chromiumAvailability, startTestWeb } from './helpers/web.js';

const availability = chromiumAvailability();

describe.skipIf(availability.skip)('question length in the page', () => {
  let web: TestWeb;
  let browser: Browser;

  beforeAll(async () => {
    web = await startTestWeb();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
    await web?.stop();
  });

  it('takes a question of emoji up to the limit in characters, and refuses one over it with the server\'s message', async () => {
    const page = await browser.newPage();
    await page.goto(web.url);
    await page.waitForFunction('document.querySelector("#question") !== null');
    const limit = TEST_LIMITS.maxQuestionChars;
    await page.focus('#question');
    await page.keyboard.insertText('🍎'.repeat(limit));
    expect(await page.evaluate('[...document.querySelector("#question").value].length')).toBe(limit);
    await page.keyboard.insertText('🍎');
    await page.setInputFiles('#image-input', { name: 'a.png', mimeType: 'image/png', buffer: Buffer.from('not sent') });
    await page.click('#send');
    await expect
      .poll(() => page.textContent('#composer-error'))
      .toBe(`The question is too long: the limit is ${limit} characters (this one has ${limit + 1}). Please shorten it.`);
  });
});
