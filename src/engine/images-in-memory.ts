import { createHash } from 'node:crypto';
import type { ImageSource } from './types.js';

/**
 * Image files held in memory by sha256: the ImageSource of a run that has the
 * files at hand (the CLI, eval, tests), where lisa-bot serve uses its
 * conversation store.
 */
export class ImagesInMemory implements ImageSource {
  private readonly files = new Map<string, Uint8Array>();

  /** Keeps `bytes` (not to be changed afterwards) and returns their hash, which names them in a ChatRequest. */
  add(bytes: Uint8Array): string {
    const hash = createHash('sha256').update(bytes).digest('hex');
    this.files.set(hash, bytes);
    return hash;
  }

  delete(hash: string): void {
    this.files.delete(hash);
  }

  async get(hash: string): Promise<Uint8Array | undefined> {
    return this.files.get(hash);
  }
}
