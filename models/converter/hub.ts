/**
 * `--checkpoint` / `--vision-tower` may name a folder or a Hugging Face Hub repo
 * (`owner/name` or `owner/name@revision`). A repo is fetched into the Hugging
 * Face cache (the layout huggingface_hub uses, so files Python tools already
 * downloaded are reused and vice versa), only the files the converter reads.
 *
 * Library calls (@huggingface/hub): modelInfo (the revision's commit), listFiles
 * (names, sizes, LFS sha256 / git blob ids, which name the blobs as Python names
 * them), getHFHubCachePath / getRepoFolderName (the cache layout). The bytes are
 * fetched here from the Hub's resolve URL with Range requests (hub-download.ts):
 * the library's downloadFileToCacheDir / snapshotDownload neither resume nor
 * report progress (and snapshotDownload takes every file of the repo), and its
 * WebBlob streams hide the HTTP status a resume must check (206, not 200).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { getHFHubCachePath, getRepoFolderName, listFiles, modelInfo } from '@huggingface/hub';
import { UserInputError } from '../../src/errors.js';
import { selectFiles, shardsOf, type ModelKind } from './hub-files.js';
import { downloadBlob, fileSize, linkPointer, type HubProgressEvent } from './hub-download.js';
import { cachedSnapshot, explainHubError, isUnreachable, readRef, readSnapshotText, writeRef } from './hub-cache.js';
import { stderrHubProgress } from './hub-progress.js';

export type { HubProgressEvent } from './hub-download.js';
export type { ModelKind } from './hub-files.js';

export interface ResolveOptions {
  /** The hub cache folder; default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Default HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default HF_TOKEN (then HUGGING_FACE_HUB_TOKEN). Sent as a bearer header, never printed. */
  token?: string;
  /** Download progress; default: bars on a TTY stderr, plain lines otherwise. `false`: silent. */
  progress?: ((event: HubProgressEvent) => void) | false;
  /** Use only the cache (default: HF_HUB_OFFLINE=1). */
  offline?: boolean;
  fetch?: typeof fetch;
  /** Further attempts per file after a dropped connection (default 5); the partial file is continued. */
  retries?: number;
  retryDelayMs?: number;
  stallTimeoutMs?: number;
}

export interface ResolvedSource {
  /** The folder to read: the argument itself, or the cache snapshot of the repo's commit. */
  dir: string;
  fromHub: boolean;
  /** For a Hub id: the repo, revision and commit that `dir` holds. */
  repo?: string;
  revision?: string;
  commit?: string;
}

export interface HubId {
  repo: string;
  revision: string;
}

const HUB_ID = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\/([A-Za-z0-9][A-Za-z0-9_.-]*)(?:@([A-Za-z0-9_.\/-]+))?$/;

/** `owner/name[@revision]`, or undefined when the text cannot be a Hub id. */
export function parseHubId(text: string): HubId | undefined {
  const match = HUB_ID.exec(text);
  if (!match) return undefined;
  const revision = match[3] ?? 'main';
  // The revision becomes a path under refs/: no climbing out of it.
  if (revision.split('/').some((part) => part === '' || part === '.' || part === '..')) return undefined;
  return { repo: `${match[1]}/${match[2]}`, revision };
}

/**
 * A local path that exists is a folder (never a Hub id); anything else that
 * reads as `owner/name[@revision]` is a Hub id, downloaded when needed.
 */
export async function resolveModelSource(arg: string, kind: ModelKind, options: ResolveOptions = {}): Promise<ResolvedSource> {
  const local = await stat(arg).catch(() => undefined);
  if (local) {
    if (!local.isDirectory()) {
      throw new UserInputError(`${arg} is a file; give the checkpoint's folder (or a Hub id such as xinlai/LISA-7B-v1).`, 'checkpoint_missing');
    }
    return { dir: path.resolve(arg), fromHub: false };
  }
  const id = parseHubId(arg);
  if (!id) {
    const example = kind === 'lisa' ? 'xinlai/LISA-7B-v1' : 'openai/clip-vit-large-patch14';
    throw new UserInputError(`There is no folder ${arg}, and it is not a Hub id either (like ${example}).`, 'checkpoint_missing');
  }
  return downloadFromHub(id, kind, options);
}

function hubToken(options: ResolveOptions): string | undefined {
  const token = options.token ?? process.env.HF_TOKEN ?? process.env.HUGGING_FACE_HUB_TOKEN;
  return token?.trim() || undefined;
}

async function downloadFromHub(id: HubId, kind: ModelKind, options: ResolveOptions): Promise<ResolvedSource> {
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const token = hubToken(options);
  if (token && !token.startsWith('hf_')) {
    // The library refuses such tokens with a bare TypeError; say which setting is wrong.
    throw new UserInputError('HF_TOKEN is not a Hugging Face access token (those start with hf_); create one at https://huggingface.co/settings/tokens.', 'checkpoint_missing');
  }
  const cacheDir = options.cacheDir ?? getHFHubCachePath();
  const storage = path.join(cacheDir, getRepoFolderName({ type: 'model', name: id.repo }));
  const progress = options.progress === false ? () => undefined : (options.progress ?? stderrHubProgress());
  const offline = options.offline ?? ['1', 'true', 'yes', 'on'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
  const context = { repo: id.repo, revision: id.revision, endpoint, hasToken: Boolean(token), file: undefined as string | undefined };

  const fromCache = async (): Promise<ResolvedSource | undefined> => {
    const commit = /^[0-9a-f]{40}$/.test(id.revision) ? id.revision : await readRef(storage, id.revision);
    const dir = commit && (await cachedSnapshot(storage, commit, kind));
    return dir ? { dir, fromHub: true, repo: id.repo, revision: id.revision, commit } : undefined;
  };

  // A pinned commit already in the cache needs no network at all (as in Python).
  if (/^[0-9a-f]{40}$/.test(id.revision) || offline) {
    const cached = await fromCache();
    if (cached) return cached;
    if (offline) {
      throw new UserInputError(`HF_HUB_OFFLINE is set and the cache (${cacheDir}) holds no complete copy of ${id.repo}@${id.revision}; unset it to download.`, 'checkpoint_missing');
    }
  }

  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const { fetch: tracked, lastErrorCode } = trackErrors(options.fetch ?? fetch, stallTimeoutMs);
  const hub = { hubUrl: endpoint, accessToken: token, fetch: tracked };
  let commit: string;
  let names: Map<string, { size: number; etag: string; check?: { kind: 'sha256' | 'git-blob'; hex: string } }>;
  try {
    const info = await modelInfo({ ...hub, name: id.repo, revision: id.revision, additionalFields: ['sha'] });
    // The commit and blob ids become folder and file names: take only what looks like one.
    if (!/^[0-9a-f]{40}$/.test(info.sha ?? '')) throw new Error(`no commit id for ${id.repo}@${id.revision}`);
    commit = info.sha;
    names = new Map();
    // Everything the converter reads sits at the top of the repo.
    for await (const entry of listFiles({ ...hub, repo: id.repo, revision: commit, recursive: false })) {
      if (entry.type !== 'file') continue;
      const etag = entry.lfs?.oid ?? entry.xetHash ?? entry.oid;
      if (!etag || !/^[0-9a-zA-Z_-]+$/.test(etag)) continue;
      const check = entry.lfs ? { kind: 'sha256' as const, hex: entry.lfs.oid } : entry.oid && !entry.xetHash ? { kind: 'git-blob' as const, hex: entry.oid } : undefined;
      names.set(entry.path, { size: entry.lfs?.size ?? entry.size, etag, check });
    }
  } catch (error) {
    if (isUnreachable(error)) {
      const cached = await fromCache();
      if (cached) {
        progress({ type: 'note', repo: id.repo, message: `${endpoint} cannot be reached; using the cached copy of ${id.repo} (${cached.commit?.slice(0, 8)}).` });
        return cached;
      }
    }
    throw explainHubError(error, { ...context, errorCode: lastErrorCode() });
  }
  if (id.revision !== commit) await writeRef(storage, id.revision, commit);

  const snapshot = path.join(storage, 'snapshots', commit);
  const label = `${id.repo}@${id.revision} on ${endpoint}`;
  const selection = selectFiles(kind, new Set(names.keys()), `${id.repo} (${endpoint})`);

  const fetchOne = async (file: string): Promise<void> => {
    const entry = names.get(file);
    if (!entry) {
      throw new UserInputError(`${label}: ${selection.weights} names ${file}, which the repo does not have.`, 'checkpoint_missing');
    }
    const pointerPath = path.join(snapshot, file);
    const blobPath = path.join(storage, 'blobs', entry.etag);
    if ((await fileSize(pointerPath)) === entry.size) {
      progress({ type: 'end', repo: id.repo, file, total: entry.size, cached: true });
      return;
    }
    if ((await fileSize(blobPath)) === entry.size) {
      await linkPointer(blobPath, pointerPath);
      progress({ type: 'end', repo: id.repo, file, total: entry.size, cached: true });
      return;
    }
    context.file = file;
    // Each attempt goes through the Hub's resolve URL (not a CDN URL found earlier): the
    // signed CDN links it redirects to expire, and a resumed 10 GB shard can outlive one.
    const url = `${endpoint}/${id.repo}/resolve/${commit}/${encodeURIComponent(file)}`;
    try {
      await downloadBlob(
        { repo: id.repo, file, url, size: entry.size, blobPath, pointerPath, check: entry.check },
        {
          fetch: tracked,
          token,
          progress,
          retries: options.retries ?? 5,
          retryDelayMs: options.retryDelayMs ?? 1000,
          stallTimeoutMs,
        },
      );
    } catch (error) {
      throw explainHubError(error, { ...context, errorCode: lastErrorCode() });
    }
  };

  for (const file of selection.files) await fetchOne(file);
  if (selection.isIndex) {
    const shards = shardsOf(await readSnapshotText(snapshot, selection.weights), `${label}: ${selection.weights}`);
    for (const shard of shards) await fetchOne(shard);
  }
  return { dir: snapshot, fromHub: true, repo: id.repo, revision: id.revision, commit };
}

/**
 * Wraps fetch to remember the Hub's X-Error-Code of the last failed answer
 * (RepositoryNotFound, GatedRepo, RevisionNotFound...), which the library's
 * errors drop, so that the message can say what to do.
 */
function trackErrors(base: typeof fetch, timeoutMs: number): { fetch: typeof fetch; lastErrorCode: () => string | undefined } {
  let code: string | undefined;
  const tracked: typeof fetch = async (input, init) => {
    // The library's metadata calls set no deadline; a silent server must not hang the conversion.
    const response = await base(input, { ...init, signal: init?.signal ?? AbortSignal.timeout(timeoutMs) });
    if (!response.ok) code = response.headers.get('X-Error-Code') ?? undefined;
    return response;
  };
  return { fetch: tracked, lastErrorCode: () => code };
}
