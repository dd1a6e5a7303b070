// A pixel worker thread's entry: TypeScript through tsx, as in the main thread (src/bin.js).
import { register } from 'tsx/esm/api';

register();
const tasks = await import('./pixel-tasks.ts');

export const { decode, decodeWithClip, clipRows, samRows } = tasks;
