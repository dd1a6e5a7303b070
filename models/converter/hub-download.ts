/**
 * One file into the Hugging Face cache layout, the way huggingface_hub (Python)
 * lays it out, so either tool reuses what the other fetched:
 *
 *   <cache>/models--owner--name/blobs/<etag>                  the bytes
 *   <cache>/models--owner--name/blobs/<etag>.incomplete       while downloading
 *   <cache>/models--owner--name/snapshots/<commit>/<file>  -> ../../blobs/<etag>
 *   <cache>/models--owner--name/refs/<revision>               the commit
 *
 * Bytes only ever reach `blobs/<etag>` by a rename after the size and checksum
 * (sha256 for LFS files, the git blob id for small ones) are right, so an
 * interrupted download leaves only an `.incomplete` file, which the next
 * attempt continues with a Range request.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, rename, rm, stat, symlink, truncate } from 'node:fs/promises';
import path from 'node:path';
import { HubApiError } from '@huggingface/hub';

export type HubProgressEvent =
  /** A file is about to be fetched; `from` > 0 when an earlier attempt is continued. */
  | { type: 'start'; repo: string; file: string; total: number; from: number }
  | { type: 'bytes'; repo: string; file: string; done: number; total: number }
  | { type: 'retry'; repo: string; file: string; done: number; total: number; reason: string }
  /** The file is in place; `cached` when nothing had to be fetched. */
  | { type: 'end'; repo: string; file: string; total: number; cached: boolean }
  | { type: 'note'; repo: string; message: string };

export interface BlobTarget {
  repo: string;
  file: string;
  /** The Hub's resolve URL for the file at a fixed commit (it may redirect to a CDN). */
  url: string;
  size: number;
  blobPath: string;
  pointerPath: string;
  /** The checksum the listing promises; none for Xet-only entries. */
  check?: { kind: 'sha256' | 'git-blob'; hex: string };
}

export interface TransferOptions {
  fetch: typeof fetch;
  token?: string;
  progress: (event: HubProgressEvent) => void;
  /** Further attempts after a dropped connection or a server error. */
  retries: number;
  retryDelayMs: number;
  /** A connection that sends nothing for this long is dropped and retried. */
  stallTimeoutMs: number;
}

/** A failure worth another attempt (the partial file is kept and continued). */
export class TransientError extends Error {}

export async function fileSize(file: string): Promise<number | undefined> {
  try {
    const info = await stat(file);
    return info.isFile() ? info.size : undefined;
  } catch {
    return undefined;
  }
}

/** Makes `pointerPath` a relative symlink to the blob (a copy where links are not allowed), as Python does. */
export async function linkPointer(blobPath: string, pointerPath: string): Promise<void> {
  await mkdir(path.dirname(pointerPath), { recursive: true });
  await rm(pointerPath, { force: true });
  try {
    await symlink(path.relative(path.dirname(pointerPath), blobPath), pointerPath);
  } catch {
    await copyFile(blobPath, pointerPath);
  }
}

function newHash(target: BlobTarget): Hash | undefined {
  if (!target.check) return undefined;
  if (target.check.kind === 'sha256') return createHash('sha256');
  return createHash('sha1').update(`blob ${target.size}\0`);
}

async function hashPrefix(hash: Hash | undefined, file: string): Promise<void> {
  if (!hash) return;
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function isTransient(error: unknown): boolean {
  if (error instanceof TransientError) return true;
  if (error instanceof HubApiError) return error.statusCode >= 500 || error.statusCode === 408 || error.statusCode === 429;
  // fetch's own failures (refused, reset, 'terminated' mid-body) and our stall abort.
  return error instanceof TypeError || (error as Error)?.name === 'AbortError' || (error as Error)?.name === 'TimeoutError';
}

/** Downloads (or continues) the blob, then links the snapshot entry to it. */
export async function downloadBlob(target: BlobTarget, options: TransferOptions): Promise<void> {
  await mkdir(path.dirname(target.blobPath), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      await transferOnce(target, options);
      break;
    } catch (error) {
      if (!isTransient(error)) throw error;
      const reason = describe(error, options.stallTimeoutMs);
      const done = (await fileSize(`${target.blobPath}.incomplete`)) ?? 0;
      if (attempt >= options.retries) {
        if (error instanceof HubApiError) throw error;
        const tries = attempt + 1;
        throw new TransientError(`${reason} at ${done} of ${target.size} bytes${tries > 1 ? `, ${tries} attempts` : ''}`);
      }
      options.progress({ type: 'retry', repo: target.repo, file: target.file, done, total: target.size, reason });
      await sleep(options.retryDelayMs * 2 ** attempt);
    }
  }
  await linkPointer(target.blobPath, target.pointerPath);
  options.progress({ type: 'end', repo: target.repo, file: target.file, total: target.size, cached: false });
}

function describe(error: unknown, stallTimeoutMs: number): string {
  if (error instanceof TransientError) return error.message;
  const name = (error as Error)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return `no data for ${Math.round(stallTimeoutMs / 1000)} s`;
  const cause = (error as { cause?: { code?: string; message?: string } })?.cause;
  return `connection lost (${cause?.code ?? cause?.message ?? (error as Error)?.message ?? String(error)})`;
}

async function transferOnce(target: BlobTarget, options: TransferOptions): Promise<void> {
  const incomplete = `${target.blobPath}.incomplete`;
  let offset = (await fileSize(incomplete)) ?? 0;
  if (offset > target.size) {
    await truncate(incomplete, 0);
    offset = 0;
  }
  let hash = newHash(target);
  await hashPrefix(hash, incomplete).catch(() => undefined);
  options.progress({ type: 'start', repo: target.repo, file: target.file, total: target.size, from: offset });

  if (offset < target.size) {
    const controller = new AbortController();
    let timer = setTimeout(() => controller.abort(), options.stallTimeoutMs);
    const headers: Record<string, string> = {};
    if (options.token) headers.Authorization = `Bearer ${options.token}`;
    if (offset > 0) headers.Range = `bytes=${offset}-`;
    try {
      const response = await options.fetch(target.url, { headers, signal: controller.signal });
      if (!response.ok) {
        await response.body?.cancel();
        throw new HubApiError(target.url, response.status, response.headers.get('X-Request-Id') ?? undefined, `HTTP ${response.status}`);
      }
      if (offset > 0 && response.status !== 206) {
        // The server sent the whole file instead of the rest: start over with it.
        offset = 0;
        hash = newHash(target);
      } else if (offset > 0) {
        const start = /^bytes (\d+)-/.exec(response.headers.get('Content-Range') ?? '')?.[1];
        if (Number(start) !== offset) {
          await response.body?.cancel();
          await rm(incomplete, { force: true });
          throw new TransientError(`the server answered a range request with bytes from ${start ?? '?'} instead of ${offset}`);
        }
      }
      const handle = await open(incomplete, offset > 0 ? 'a' : 'w');
      let done = offset;
      let lastEvent = 0;
      try {
        for await (const chunk of response.body ?? []) {
          clearTimeout(timer);
          timer = setTimeout(() => controller.abort(), options.stallTimeoutMs);
          const bytes = chunk as Uint8Array;
          if (done + bytes.length > target.size) {
            await handle.close();
            await rm(incomplete, { force: true });
            throw new TransientError(`the server sent more than the ${target.size} bytes the listing gives`);
          }
          await handle.write(bytes);
          hash?.update(bytes);
          done += bytes.length;
          const now = Date.now();
          if (now - lastEvent >= 200) {
            lastEvent = now;
            options.progress({ type: 'bytes', repo: target.repo, file: target.file, done, total: target.size });
          }
        }
      } finally {
        await handle.close().catch(() => undefined);
      }
      options.progress({ type: 'bytes', repo: target.repo, file: target.file, done, total: target.size });
      if (done < target.size) throw new TransientError(`the connection closed after ${done} of ${target.size} bytes`);
    } finally {
      clearTimeout(timer);
    }
  }

  if (hash && target.check) {
    const hex = hash.digest('hex');
    if (hex !== target.check.hex) {
      await rm(incomplete, { force: true });
      throw new TransientError(`the downloaded bytes do not match the ${target.check.kind} ${target.check.hex} (got ${hex})`);
    }
  }
  await rename(incomplete, target.blobPath);
}
