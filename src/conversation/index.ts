export { cliKey, conversationKey } from './keys.js';
export {
  capTurns,
  imageContext,
  trimHistory,
  type Session,
  type StoredSegment,
  type StoredTurn,
} from './session.js';
export { openKvBackend, type KvBackend, type StoreOptions } from './backend.js';
export {
  MAX_STORED_TURNS,
  createSessionStore,
  openConversationStores,
  type ConversationStores,
  type DedupeStore,
  type SessionStore,
} from './store.js';
export { createImageStore, sha256Hex, sha256HexAsync, type ImageStore } from './images.js';
