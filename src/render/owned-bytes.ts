/**
 * Buffers that own their whole ArrayBuffer, so that a worker can hand them to
 * another thread by transfer. sharp's output cannot be transferred (external
 * or pooled memory: Node silently clones it); copying a 1080p overlay into
 * fresh memory to hand it over cost page faults, so the
 * JPEG strip join writes into its result directly.
 */
export function ownedConcat(pieces: readonly Uint8Array[]): Buffer {
  const out = Buffer.from(new ArrayBuffer(pieces.reduce((n, piece) => n + piece.length, 0)));
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
  }
  return out;
}

export function ownedCopy(bytes: Uint8Array): Buffer {
  return ownedConcat([bytes]);
}
