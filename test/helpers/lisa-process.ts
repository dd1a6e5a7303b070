/** The child-process launcher lives with the scale-out benchmark, which drives the same processes. */
export { LisaProcess, freePort } from '../../src/bench/lisa-process.js';
