/**
 * A stored conversation as a surface shows it again (the web page after a
 * reload): each turn's question and marked answer, the image it was about,
 * and that image with its masks redrawn in the colours they were answered in.
 */
import sharp from 'sharp';
import type { ConversationStores, Session, StoredTurn } from '../conversation/index.js';
import { segmentColour, colourByHex } from '../render/palette.js';
import type { DecodedImages } from '../render/decoded-images.js';
import type { OverlayWorkers } from '../render/overlay-workers.js';
import type { OverlayFormat } from '../render/formats.js';
import { markedText, overlayImage } from './reply.js';
import type { PastTurn, ReplyImage, ReplySegment } from './types.js';

export interface HistoryDeps {
  stores: ConversationStores;
  pixels: OverlayWorkers;
  decodedImages: DecodedImages;
  segToken: string;
  overlayFormat: OverlayFormat;
}

/** Thumbnails are for the conversation log: small, and JPEG whatever the upload was (a browser may not show TIFF). */
const THUMBNAIL_SIDE = 320;

function segmentsOf(turn: StoredTurn): ReplySegment[] {
  return turn.segments.map((s, index) => ({
    index,
    colour: colourByHex(s.colour) ?? segmentColour(index),
    bbox: s.bbox,
    area: s.area,
    score: s.score,
    rle: s.rle,
    empty: s.area === 0,
  }));
}

export async function pastTurns(deps: HistoryDeps, conversationKey: string): Promise<PastTurn[]> {
  const session = await deps.stores.sessions.get(conversationKey);
  return (session?.turns ?? []).map((turn, index, turns) => ({
    index,
    question: turn.user,
    text: markedText(turn.assistant, deps.segToken, segmentsOf(turn)),
    segments: segmentsOf(turn).map(({ rle: _rle, ...rest }) => rest),
    newImage: index === 0 || turns[index - 1]!.imageHash !== turn.imageHash,
    imageHash: turn.imageHash,
    at: turn.at,
  }));
}

/** A stored turn's image as a thumbnail, or with its masks drawn; undefined when the turn or its image is no longer kept. */
export async function pastImage(
  deps: HistoryDeps,
  conversationKey: string,
  index: number,
  which: 'thumbnail' | 'overlay',
): Promise<ReplyImage | undefined> {
  const session: Session | undefined = await deps.stores.sessions.get(conversationKey);
  const turn = session?.turns[index];
  if (!turn) return undefined;
  const bytes = await deps.stores.images.get(turn.imageHash);
  if (!bytes) return undefined;
  if (which === 'thumbnail') {
    const { data, info } = await sharp(bytes)
      .rotate()
      .resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 80 })
      .toBuffer({ resolveWithObject: true });
    return { data, contentType: 'image/jpeg', format: 'jpeg', width: info.width, height: info.height, filename: 'lisa-image.jpg' };
  }
  if (turn.segments.length === 0) return undefined;
  const pixels = await deps.decodedImages.acquire(turn.imageHash, bytes);
  try {
    return await overlayImage(deps.pixels, pixels.image, segmentsOf(turn), { format: deps.overlayFormat });
  } finally {
    pixels.release();
  }
}
