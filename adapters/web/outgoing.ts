/**
 * What goes back to the page: a reply and a stored turn as JSON (the text with
 * its markers, the segments without their masks, same-origin URLs of the
 * images). The bytes themselves are served by api.ts.
 */
import type { PastTurn, Reply, ReplySegment } from '../../src/assistant/types.js';
import type { SegmentColour } from '../../src/render/palette.js';

export interface PublicSegment extends Pick<ReplySegment, 'index' | 'bbox' | 'area' | 'empty'> {
  colour: Omit<SegmentColour, 'rgb'>;
}

export interface PublicReply {
  text: string;
  segments: PublicSegment[];
  /** Same-origin URL of the overlay image; absent when the answer has no mask. */
  overlayUrl?: string;
  demoNotice?: string;
}

export function publicReply(id: string, reply: Reply): PublicReply {
  return {
    text: reply.text,
    segments: reply.segments.map((s) => ({
      index: s.index,
      colour: { hex: s.colour.hex, emoji: s.colour.emoji, name: s.colour.name },
      bbox: s.bbox,
      area: s.area,
      empty: s.empty,
    })),
    overlayUrl: reply.overlay ? `/api/turns/${encodeURIComponent(id)}/overlay` : undefined,
    demoNotice: reply.demoNotice,
  };
}

/** A stored turn as the page shows it: its question, the image it brought (when new) and its answer. */
export interface PublicPastTurn {
  question: string;
  imageUrl?: string;
  reply: PublicReply;
}

export function pastUrl(turn: PastTurn, which: 'thumbnail' | 'overlay'): string {
  // `at` tells apart the turns that share an index across new conversations, so a cached image is never another's.
  return `/api/conversation/turns/${turn.index}/${which}?at=${turn.at}`;
}

export function publicPastTurn(turn: PastTurn): PublicPastTurn {
  return {
    question: turn.question,
    imageUrl: turn.newImage ? pastUrl(turn, 'thumbnail') : undefined,
    reply: {
      text: turn.text,
      segments: turn.segments.map(({ index, colour: { hex, emoji, name }, bbox, area, empty }) => ({ index, colour: { hex, emoji, name }, bbox, area, empty })),
      overlayUrl: turn.segments.length > 0 ? pastUrl(turn, 'overlay') : undefined,
    },
  };
}
