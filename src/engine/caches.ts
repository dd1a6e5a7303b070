import { LRUCache } from 'lru-cache';
import { type KvState, kvBytes } from './kv.js';
import type { PackDtype } from './floats.js';
import { type FloatData, allocFloat, copyFloats } from './tensors.js';

/** What one image costs the encoders, kept so a follow-up runs neither. */
export interface ImageEmbeddings {
  /** vision_encoder output rows [imageTokens, hidden], pack dtype. */
  clipFeatures: FloatData;
  /** sam_image_encoder output [1,256,64,64]. */
  samEmbeddings: Float32Array;
  original: { width: number; height: number };
  resized: { width: number; height: number };
}

/** Image embeddings by image sha256, bounded in bytes. */
export class ImageEmbeddingCache {
  private readonly lru: LRUCache<string, ImageEmbeddings>;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.lru = new LRUCache<string, ImageEmbeddings>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (e) => Math.max(1, e.clipFeatures.byteLength + e.samEmbeddings.byteLength),
    });
  }

  get(hash: string): ImageEmbeddings | undefined {
    const found = this.lru.get(hash);
    if (found) this.hits++;
    else this.misses++;
    return found;
  }

  /** Without counting a hit or a miss, or touching recency. */
  has(hash: string): boolean {
    return this.lru.has(hash);
  }

  keys(): string[] {
    return [...this.lru.keys()];
  }

  /** An entry larger than the whole cache is not kept (lru-cache refuses it). */
  set(hash: string, embeddings: ImageEmbeddings): void {
    this.lru.set(hash, embeddings);
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get size(): number {
    return this.lru.size;
  }
}

/**
 * Token embedding rows by token id. The embed_tokens graph is a lookup, so a
 * row never changes; answers reuse a small vocabulary ("Sure", "it", "[SEG]",
 * punctuation), and a decoding step whose token is known here skips a graph
 * run (a dozen per answer).
 */
export class TokenEmbeddingCache {
  private readonly lru: LRUCache<number, FloatData>;

  /** @param embed the graph: rows for these ids, in order */
  constructor(
    private readonly embed: (ids: readonly number[]) => Promise<FloatData>,
    private readonly hidden: number,
    private readonly dtype: PackDtype,
    maxBytes = 8 * 2 ** 20,
  ) {
    this.lru = new LRUCache<number, FloatData>({ maxSize: Math.max(1, maxBytes), sizeCalculation: (row) => Math.max(1, row.byteLength) });
  }

  /** Rows for `ids`, in order: known ones from here, the rest from one graph run. */
  async rows(ids: readonly number[]): Promise<FloatData> {
    const H = this.hidden;
    const known = ids.map((id) => this.lru.get(id));
    const missing: number[] = [];
    const slot = new Map<number, number>();
    ids.forEach((id, i) => {
      if (known[i] || slot.has(id)) return;
      slot.set(id, missing.length);
      missing.push(id);
    });
    const fresh = missing.length > 0 ? await this.embed(missing) : allocFloat(this.dtype, 0);
    missing.forEach((id, j) => this.lru.set(id, fresh.slice(j * H, (j + 1) * H)));
    const out = allocFloat(this.dtype, ids.length * H);
    ids.forEach((id, i) => {
      const row = known[i];
      if (row) copyFloats(out, i * H, row, 0, H);
      else copyFloats(out, i * H, fresh, slot.get(id)! * H, H);
    });
    return out;
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }
}

/**
 * One unit of a sequence: a token id, or an image (its hash) that stands for
 * all of its feature rows. Two sequences share a KV prefix exactly as far as
 * their units agree, since attention is causal.
 */
export type SequenceUnit = number | `image:${string}`;

interface KvEntry {
  units: SequenceUnit[];
  kv: KvState;
}

export interface KvMatch {
  kv: KvState;
  /** Units of the new sequence whose KV is in `kv`. */
  units: number;
}

/**
 * Recent decoder KV caches, bounded in bytes. A follow-up in a conversation
 * extends the previous prompt + answer, so its longest common prefix with an
 * entry is everything but the new question: only that gets prefilled.
 */
export class KvCache {
  private readonly lru: LRUCache<number, KvEntry>;
  private nextId = 0;
  hits = 0;
  misses = 0;

  constructor(
    maxBytes: number,
    private readonly imageRows: number,
  ) {
    this.lru = new LRUCache<number, KvEntry>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (e) => Math.max(1, kvBytes(e.kv)),
    });
  }

  private positionsOf(unit: SequenceUnit): number {
    return typeof unit === 'number' ? 1 : this.imageRows;
  }

  /**
   * The entry sharing the longest prefix with `units`, cut to at most
   * `maxPositions`. `extends` is true when all of the entry is that prefix
   * (the new sequence continues it, as a follow-up does).
   */
  find(units: readonly SequenceUnit[], maxPositions: number): (KvMatch & { positions: number; entryId: number; extends: boolean }) | undefined {
    let best: { entryId: number; units: number; positions: number } | undefined;
    for (const [entryId, entry] of this.lru.entries()) {
      let shared = 0;
      let positions = 0;
      while (
        shared < entry.units.length &&
        shared < units.length &&
        entry.units[shared] === units[shared] &&
        positions + this.positionsOf(units[shared]!) <= Math.min(maxPositions, entry.kv.length)
      ) {
        positions += this.positionsOf(units[shared]!);
        shared++;
      }
      if (shared > 0 && (!best || positions > best.positions)) best = { entryId, units: shared, positions };
    }
    if (!best) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    const entry = this.lru.get(best.entryId)!;
    return { kv: entry.kv, units: best.units, positions: best.positions, entryId: best.entryId, extends: best.units === entry.units.length };
  }

  /**
   * Stores a state. `replaces` names an entry the new one continues: it is
   * dropped, since its whole prefix lives on here. An entry that only shares a
   * prefix (another conversation on the same system prompt) must stay.
   */
  store(units: SequenceUnit[], kv: KvState, replaces?: number): void {
    if (replaces !== undefined) this.lru.delete(replaces);
    this.lru.set(this.nextId++, { units, kv });
  }

  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get size(): number {
    return this.lru.size;
  }
}
