export type { JobContext, JobProgress, JobQueue } from './queue.js';
export { InProcessQueue } from './in-process.js';
