// An overlay worker thread's entry: TypeScript through tsx, as in the main thread (src/bin.js).
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./overlay-tasks.ts');

export const { decode, overlay } = tasks;
