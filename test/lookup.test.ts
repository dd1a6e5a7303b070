import { describe, expect, it } from 'vitest';
import { lookupDraft } from '../src/engine/lookup.js';

describe('prompt-lookup drafts', () => {
  it('proposes what followed the latest earlier occurrence of the longest matching suffix', () => {
    // ... 5 6 7 8 ... 6 7 9 ... | 6 7 -> the latest "6 7" was followed by 9 (not 8).
    expect(lookupDraft([1, 5, 6, 7, 8, 2, 6, 7, 9, 3], [6, 7], 4)).toEqual([9, 3, 6, 7]);
    // A three-token match wins over a later one-token match.
    expect(lookupDraft([4, 5, 6, 10, 11, 6, 12], [4, 5, 6], 2)).toEqual([10, 11]);
  });

  it('caps the draft, and proposes nothing when nothing matches or no room is left', () => {
    expect(lookupDraft([1, 2, 3, 4, 5], [2], 2)).toEqual([3, 4]);
    expect(lookupDraft([1, 2, 3], [9], 5)).toEqual([]);
    expect(lookupDraft([1, 2, 3], [2], 0)).toEqual([]);
    expect(lookupDraft([], [], 5)).toEqual([]);
  });

  it('never matches or proposes an image slot', () => {
    expect(lookupDraft([1, -200, 1, 7], [-200], 3)).toEqual([]);
    expect(lookupDraft([3, -200, 4], [3], 3)).toEqual([]);
    expect(lookupDraft([3, 5, -200, 4], [3], 3)).toEqual([5]);
  });
});
