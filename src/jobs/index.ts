export type { JobContext, JobHandler, JobProgress, JobQueue, SubmitOptions, SubmittedJob } from './queue.js';
export { InProcessQueue, type InProcessQueueOptions } from './in-process.js';
