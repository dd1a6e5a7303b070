/**
 * From the page to the assistant: the upload of one turn, a multipart form
 * with a `question` text field and at most one `image` file, read into memory
 * with hard caps, then the IncomingTurn. A refused upload leaves nothing
 * behind: the bytes read so far are dropped with the request.
 */
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import { questionTooLong } from '../../src/assistant/limits.js';
import type { IncomingTurn } from '../../src/assistant/types.js';
import { webKey } from './conversation.js';
import { HttpError, formatBytes, requireMediaType } from './http.js';

export interface UploadLimits {
  maxImageBytes: number;
  maxQuestionChars: number;
}

export interface TurnUpload {
  /** As typed (not trimmed): the assistant checks it. */
  question: string;
  image?: { data: Uint8Array; name?: string };
}

/** Room for the multipart framing and the question on top of the image itself. */
const OVERHEAD_BYTES = 64 * 1024;

function tooLarge(limits: UploadLimits): HttpError {
  return new HttpError(
    413,
    'image_too_large',
    `The image is too large: the limit is ${formatBytes(limits.maxImageBytes)}. Send a smaller image (or a JPEG).`,
    { Connection: 'close' },
  );
}

function malformed(detail: string): HttpError {
  return new HttpError(400, 'bad_request', `The upload could not be read: ${detail}.`);
}

export function parseTurnUpload(req: IncomingMessage, limits: UploadLimits): Promise<TurnUpload> {
  requireMediaType(req, 'multipart/form-data');
  // UTF-8 takes at most 4 bytes a character; the character count is the assistant's to check.
  const maxQuestionBytes = limits.maxQuestionChars * 4 + 16;
  const hardCap = limits.maxImageBytes + maxQuestionBytes + OVERHEAD_BYTES;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > hardCap) return Promise.reject(tooLarge(limits));

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: {
        fileSize: limits.maxImageBytes,
        files: 1,
        fields: 8,
        parts: 10,
        fieldSize: maxQuestionBytes,
        fieldNameSize: 100,
        headerPairs: 20,
      },
    });
  } catch (error) {
    return Promise.reject(malformed(error instanceof Error ? error.message.toLowerCase() : 'bad multipart headers'));
  }

  return new Promise<TurnUpload>((resolve, reject) => {
    let question = '';
    let image: TurnUpload['image'];
    let failure: HttpError | undefined;
    let settled = false;
    const fail = (error: HttpError) => {
      failure ??= error;
    };
    const finish = () => {
      if (settled) return;
      settled = true;
      req.off('data', countBytes);
      if (failure) {
        image = undefined;
        reject(failure);
      } else {
        resolve({ question, image });
      }
    };

    // A body far over every limit is cut short instead of being read to the end.
    let received = 0;
    const countBytes = (chunk: Buffer) => {
      received += chunk.length;
      if (received > hardCap && !settled) {
        failure = tooLarge(limits);
        req.unpipe(parser);
        req.pause();
        finish();
      }
    };
    req.on('data', countBytes);

    parser.on('field', (name, value, info) => {
      if (name !== 'question') return;
      if (info.valueTruncated) {
        fail(new HttpError(400, 'question_too_long', questionTooLong(limits.maxQuestionChars).message));
      } else {
        question = value;
      }
    });

    parser.on('file', (name, stream, info) => {
      if (name !== 'image') {
        fail(malformed(`unexpected file field "${name}" (send the image as "image")`));
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      stream.on('data', (chunk: Buffer) => {
        if (truncated) return;
        chunks.push(chunk);
        size += chunk.length;
      });
      // An upload cut short ends its file with an error; the form's own error says why.
      stream.on('error', () => fail(malformed('the upload ended early')));
      stream.on('limit', () => {
        truncated = true;
        chunks.length = 0;
        fail(tooLarge(limits));
      });
      stream.on('end', () => {
        if (truncated || failure) return;
        // An empty file input in a form arrives as a part with no name and no bytes: no image.
        if (size === 0 && !info.filename) return;
        image = { data: Buffer.concat(chunks, size), name: info.filename || undefined };
      });
    });

    parser.on('filesLimit', () => fail(new HttpError(400, 'too_many_files', 'Send one image per question.')));
    parser.on('partsLimit', () => fail(malformed('too many parts')));
    parser.on('fieldsLimit', () => fail(malformed('too many fields')));
    parser.on('error', (error: unknown) => {
      fail(malformed(error instanceof Error ? error.message.toLowerCase() : 'malformed multipart body'));
      finish();
    });
    parser.on('close', finish);
    req.on('aborted', () => {
      fail(malformed('the upload was interrupted'));
      finish();
    });
    req.on('error', () => {
      fail(malformed('the upload was interrupted'));
      finish();
    });
    req.pipe(parser);
  });
}

/** The turn of an accepted upload; the browser session is the user and the conversation. */
export function webTurn(sessionId: string, turnId: string, upload: TurnUpload): IncomingTurn {
  return {
    surface: 'web',
    conversationKey: webKey(sessionId),
    user: { id: sessionId },
    text: upload.question,
    images: upload.image ? [{ kind: 'bytes', data: upload.image.data, name: upload.image.name }] : [],
    noImageHint: 'Drop or choose an image above, then ask again.',
    requestId: turnId,
  };
}
