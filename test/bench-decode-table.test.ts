import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTable, formatDecodeTable } from '../src/bench/decode-table.js';
import { loadManifest } from '../src/engine/manifest.js';
import { makeToyPack } from './helpers/toy.js';

let toy: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  toy = await makeToyPack();
});
afterAll(() => toy.cleanup());

describe('decode table (src/bench/decode-table.ts)', () => {
  it('counts the KV bytes each decode run moves on the cpu: the whole cache in and out, not just the new rows', async () => {
    const { decoder } = await loadManifest(toy.dir);
    const rows = await decodeTable(
      [
        { name: 'a', dir: toy.dir, loop: false },
        { name: 'b', dir: toy.dir, loop: false },
      ],
      { rounds: 2, promptLength: 10, tokens: 5 },
    );
    expect(rows.map((r) => r.variant)).toEqual(['a', 'b']);
    const rowBytes = decoder.layers * 2 * decoder.kvHeads * decoder.headDim * 4;
    for (const row of rows) {
      // 5 tokens: the prefill chooses the first, four decode runs of one row each.
      expect(row.decodeRuns).toBe(4);
      expect(row.newRowsPerRunKB * 1e3).toBeCloseTo(rowBytes, 6);
      // Runs after a prompt of 10 see 10, 11, 12, 13 cached positions and hand back one more each.
      expect(row.kvInPerRunMB * 1e6).toBeCloseTo(rowBytes * 11.5, 6);
      expect(row.kvOutPerRunMB * 1e6).toBeCloseTo(rowBytes * 12.5, 6);
      // Four runs of one token each: per token, what a run moves.
      expect(row.kvPerTokenMB * 1e6).toBeCloseTo(rowBytes * 24, 6);
      expect(row.decodeTokensPerSecond).toBeGreaterThan(0);
    }
    expect(rows[0]!.speedup).toBe(1);
    const table = formatDecodeTable(rows).split('\n');
    expect(table[0]).toBe('| variant | decoder MB | prefill ms | decode tok/s | vs first | decode runs | KV in / out per run (MB) | KV in+out per token (MB) | new KV rows per run (KB) |');
    expect(table).toHaveLength(4);
  });
});
