export { cliKey, conversationKey } from './keys.js';
export { imageContext, trimHistory, type Session, type StoredTurn } from './session.js';
export { openKvBackend, type KvBackend } from './backend.js';
export { createSessionStore, openConversationStores, type ConversationStores } from './store.js';
export { createImageStore, sha256Hex, sha256HexAsync, type ImageStore } from './images.js';
