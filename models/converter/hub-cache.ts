/**
 * The cache side of Hub downloads (refs, complete snapshots for offline use)
 * and the one-line messages for everything that can go wrong on the way.
 */
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HubApiError } from '@huggingface/hub';
import { UserInputError } from '../../src/errors.js';
import { selectFiles, shardsOf, type ModelKind } from './hub-files.js';
import { fileSize, TransientError } from './hub-download.js';

/** The commit a branch or tag pointed at when last downloaded (refs/<revision>), as Python records it. */
export async function readRef(storage: string, revision: string): Promise<string | undefined> {
  const text = await readFile(path.join(storage, 'refs', revision), 'utf8').catch(() => undefined);
  const commit = text?.trim();
  return commit && /^[0-9a-f]{40}$/.test(commit) ? commit : undefined;
}

export async function writeRef(storage: string, revision: string, commit: string): Promise<void> {
  const file = path.join(storage, 'refs', revision);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, commit);
}

export async function readSnapshotText(snapshot: string, file: string): Promise<string> {
  return readFile(path.join(snapshot, file), 'utf8');
}

/** The snapshot folder when it holds every file the converter needs (shards included), else undefined. */
export async function cachedSnapshot(storage: string, commit: string, kind: ModelKind): Promise<string | undefined> {
  const dir = path.join(storage, 'snapshots', commit);
  const entries = await readdir(dir).catch(() => [] as string[]);
  const present = new Set<string>();
  // A dangling link (its blob deleted) does not count.
  for (const name of entries) if ((await fileSize(path.join(dir, name))) !== undefined) present.add(name);
  try {
    const selection = selectFiles(kind, present, dir);
    if (!selection.isIndex) return dir;
    const shards = shardsOf(await readSnapshotText(dir, selection.weights), selection.weights);
    return shards.every((shard) => present.has(shard)) ? dir : undefined;
  } catch {
    return undefined;
  }
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

function causeCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } })?.cause;
  return cause?.code ?? cause?.errors?.[0]?.code ?? (cause?.message || undefined);
}

/** fetch could not talk to the endpoint at all (as opposed to an HTTP answer). */
export function isUnreachable(error: unknown): boolean {
  const name = (error as Error)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return true;
  return error instanceof TypeError && (error.message === 'fetch failed' || UNREACHABLE_CODES.has(causeCode(error) ?? ''));
}

export interface HubErrorContext {
  repo: string;
  revision: string;
  endpoint: string;
  hasToken: boolean;
  /** The file being fetched, when past the listing. */
  file?: string;
  /** The Hub's X-Error-Code header of the failed answer. */
  errorCode?: string;
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

/** One clear line for a failed Hub call: what happened and what the user can do. */
export function explainHubError(error: unknown, c: HubErrorContext): UserInputError {
  if (error instanceof UserInputError) return error;
  const what = c.file ? `${c.file} of ${c.repo}` : c.repo;
  const fail = (message: string) => new UserInputError(oneLine(message), 'checkpoint_missing');
  if (error instanceof HubApiError) {
    const s = error.statusCode;
    const page = `${c.endpoint}/${c.repo}`;
    if (c.errorCode === 'GatedRepo') {
      const who = c.hasToken ? 'and check that HF_TOKEN belongs to that account and may read gated repos' : 'then set HF_TOKEN to an access token of that account';
      return fail(`${c.repo} is gated on ${c.endpoint} (HTTP ${s}): accept its licence at ${page} while logged in, ${who}.`);
    }
    if (s === 403) {
      return fail(`Access to ${what} was refused (HTTP 403): if ${c.repo} is gated, accept its licence at ${page} while logged in; check that HF_TOKEN may read it.`);
    }
    if (c.errorCode === 'RevisionNotFound') return fail(`${c.repo} has no revision "${c.revision}" on ${c.endpoint} (HTTP ${s}).`);
    if (c.errorCode === 'EntryNotFound') return fail(`${c.endpoint} lists ${what} but does not serve it (HTTP ${s}).`);
    if (s === 401 || s === 404) {
      const local = 'and there is no local folder of that name';
      if (c.hasToken) {
        return fail(`${c.repo} was not found on ${c.endpoint} with the HF_TOKEN given (HTTP ${s}), ${local}: check the id, and that the token is valid and may read the repo.`);
      }
      return fail(`${c.repo} was not found on ${c.endpoint} (HTTP ${s}), ${local}: check the id; if it is private, set HF_TOKEN to an access token that may read it.`);
    }
    if (s === 429) return fail(`${c.endpoint} is rate-limiting downloads of ${c.repo} (HTTP 429): wait a few minutes and run again${c.hasToken ? '' : ', or set HF_TOKEN'}.`);
    if (s >= 500) return fail(`${c.endpoint} failed while serving ${what} (HTTP ${s}): try again later; a rerun continues the download.`);
    return fail(`${c.endpoint} answered HTTP ${s} for ${what}: ${error.message}`);
  }
  if (isUnreachable(error)) {
    const code = causeCode(error) ?? (error as Error).name;
    return fail(`Cannot reach ${c.endpoint} to download ${what} (${code}): check the network connection or HF_ENDPOINT, or give a local folder.`);
  }
  if (error instanceof TransientError) {
    return fail(`Downloading ${what} from ${c.endpoint} failed: ${error.message}; run again to continue where it stopped.`);
  }
  return fail(`${c.endpoint} gave an unexpected answer for ${what}: ${(error as Error)?.message ?? String(error)}`);
}
