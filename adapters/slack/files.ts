/**
 * Slack files -> ImageRefs. The bot token goes only into refs whose URL is on
 * a host of `slack.fileHosts`; the assistant checks the hosts again (redirects
 * included) before it sends anything.
 */
import type { webApi } from '@slack/bolt';
import type { ImageRef } from '../../src/assistant/types.js';
import { UserInputError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { MISSING_SCOPE_HINT, findLinks } from './text.js';

type WebClient = webApi.WebClient;

/** The fields of a Slack file object the adapter reads. */
export interface SlackFile {
  id: string;
  name?: string;
  title?: string;
  mimetype?: string;
  filetype?: string;
  size?: number;
  url_private?: string;
  url_private_download?: string;
  original_w?: number | string;
  original_h?: number | string;
  /** `check_file_info` (Slack Connect): the event carries a stub, files.info has the rest. */
  file_access?: string;
}

export interface FileAccess {
  botToken: string;
  fileHosts: readonly string[];
}

function hostOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.hostname : undefined;
  } catch {
    return undefined;
  }
}

function positive(value: number | string | undefined): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** A file as the assistant downloads it; undefined when Slack gave no URL. */
export function imageRefFromFile(file: SlackFile, access: FileAccess): ImageRef | undefined {
  const url = file.url_private_download ?? file.url_private;
  if (!url) return undefined;
  const host = hostOf(url);
  const trusted = host !== undefined && access.fileHosts.includes(host);
  return {
    kind: 'url',
    url,
    ...(trusted ? { headers: { Authorization: `Bearer ${access.botToken}` } } : {}),
    allowedHosts: access.fileHosts,
    declared: {
      size: positive(file.size),
      contentType: file.mimetype || undefined,
      width: positive(file.original_w),
      height: positive(file.original_h),
      name: file.name ?? file.title,
    },
    notImageHint: MISSING_SCOPE_HINT,
  };
}

/** Images first (the assistant uses the first ref), then anything else so that a lone PDF gets a clear refusal. */
export function orderFiles(files: readonly SlackFile[]): SlackFile[] {
  const isImage = (f: SlackFile) => (f.mimetype ?? '').startsWith('image/');
  return [...files.filter(isImage), ...files.filter((f) => !isImage(f))];
}

/** Slack Connect files arrive as stubs (`file_access: check_file_info`): complete them with files.info. */
export async function completeFiles(client: WebClient, files: readonly SlackFile[], logger: Logger): Promise<SlackFile[]> {
  return Promise.all(
    files.map(async (file) => {
      if (file.file_access !== 'check_file_info' && (file.url_private || file.url_private_download)) return file;
      try {
        const info = await client.files.info({ file: file.id });
        return (info.file as SlackFile | undefined) ?? file;
      } catch (error) {
        logger.warn({ err: slackError(error), file: file.id }, 'slack: files.info failed');
        return file;
      }
    }),
  );
}

/**
 * The files of one message, for events that came without them. Top-level
 * messages come from conversations.history, thread replies from
 * conversations.replies (both need the *:history scope of the channel type).
 */
export async function fetchMessageFiles(
  client: WebClient,
  where: { channel: string; ts: string; threadTs?: string },
  logger: Logger,
): Promise<SlackFile[] | undefined> {
  const { channel, ts, threadTs } = where;
  try {
    const result =
      threadTs !== undefined && threadTs !== ts
        ? await client.conversations.replies({ channel, ts: threadTs, oldest: ts, latest: ts, inclusive: true, limit: 2 })
        : await client.conversations.history({ channel, oldest: ts, latest: ts, inclusive: true, limit: 1 });
    const message = result.messages?.find((m) => m.ts === ts);
    return message?.files as SlackFile[] | undefined;
  } catch (error) {
    logger.warn({ err: slackError(error), channel, ts }, 'slack: could not fetch the message (missing *:history scope?)');
    return undefined;
  }
}

/**
 * A file of this workspace named in a `/lisa` text: a private URL on a file
 * host, or a file permalink (`…/files/<user>/<file id>/…`, looked up with
 * files.info; the link itself is never fetched). Returns the text without it.
 */
export async function fileFromText(
  client: WebClient,
  text: string,
  access: FileAccess,
): Promise<{ file: SlackFile; rest: string } | undefined> {
  for (const link of findLinks(text)) {
    const rest = text.replace(link.raw, ' ').replace(/\s{2,}/g, ' ').trim();
    const host = hostOf(link.url);
    if (host !== undefined && access.fileHosts.includes(host)) {
      const name = decodeURIComponent(new URL(link.url).pathname.split('/').pop() ?? '') || undefined;
      return { file: { id: 'linked', url_private: link.url, name }, rest };
    }
    const permalink = /\/files\/[A-Z0-9]+\/(F[A-Z0-9]+)(\/|$)/.exec(new URL(link.url).pathname);
    if (permalink) {
      try {
        const info = await client.files.info({ file: permalink[1] });
        if (info.file) return { file: info.file as SlackFile, rest };
      } catch (error) {
        const code = slackError(error).code;
        throw new UserInputError(
          code === 'missing_scope'
            ? 'I could not open that file link: the app is missing the files:read scope.'
            : 'I could not open that file link: it may have been deleted, or it is not shared with me.',
          'download_failed',
        );
      }
    }
  }
  return undefined;
}

/** A loggable summary of a Web API error (never the request, which carries the token). */
export function slackError(error: unknown): { code?: string; message: string } {
  const data = (error as { data?: { error?: string } } | undefined)?.data;
  return { code: data?.error, message: error instanceof Error ? error.message : String(error) };
}
