/** What differs between the SQLite and Redis backends: what each supplies beside keyv (binary values, atomic claims, cross-process locks). */
export interface Specifics {
  getBytes(key: string): Promise<{ value: Uint8Array; expires: number | undefined } | undefined>;
  setBytes(key: string, value: Uint8Array, ttlMs: number): Promise<void>;
  claim(key: string, ttlMs: number): Promise<boolean>;
  /** The cross-process part of a lock; the in-process mutex is taken first. */
  lock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** The error to throw instead of `error` when it means the store is unreachable right now; undefined keeps `error`. */
  unavailable?(error: unknown): Error | undefined;
  close(): Promise<void>;
}
