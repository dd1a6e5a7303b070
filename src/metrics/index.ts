export { Metrics } from './metrics.js';
export { Readiness } from './readiness.js';
export { type HealthServer, startHealthServer } from './server.js';
