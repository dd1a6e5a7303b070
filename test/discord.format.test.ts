/** Splitting answers into Discord messages (2000 characters each). */
import { describe, expect, it } from 'vitest';
import { splitMessage } from '../adapters/discord/outgoing.js';

describe('splitMessage', () => {
  it('keeps a short text whole', () => {
    expect(splitMessage('Sure, it is 🟥.')).toEqual(['Sure, it is 🟥.']);
  });

  it('splits at line breaks, never over the limit, losing nothing', () => {
    const lines = Array.from({ length: 300 }, (_, i) => `line ${i} ${'x'.repeat(i % 40)}`);
    const parts = splitMessage(lines.join('\n'));
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => p.length <= 2000)).toBe(true);
    expect(parts.flatMap((p) => p.split('\n'))).toEqual(lines);
  });

  it('splits one long paragraph at spaces', () => {
    const words = Array.from({ length: 900 }, (_, i) => `word${i}`);
    const parts = splitMessage(words.join(' '));
    expect(parts.every((p) => p.length <= 2000)).toBe(true);
    expect(parts.join(' ').split(' ')).toEqual(words);
  });

  it('cuts text without spaces hard, but never inside a surrogate pair', () => {
    const text = `a${'🟥'.repeat(1500)}`;
    const parts = splitMessage(text);
    expect(parts.every((p) => p.length <= 2000 && !/[\ud800-\udbff]$/.test(p) && !/^[\udc00-\udfff]/.test(p))).toBe(true);
    expect(parts.join('')).toBe(text);
  });

  it('closes a code fence at a cut and reopens it, with its language, in the next part', () => {
    const code = Array.from({ length: 200 }, (_, i) => `const v${i} = ${i};`).join('\n');
    const parts = splitMessage(`Here:\n\`\`\`ts\n${code}\n\`\`\`\nDone.`);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(2000);
      expect((part.match(/```/g) ?? []).length % 2).toBe(0);
    }
    expect(parts[1].startsWith('```ts\n')).toBe(true);
  });
});
