// The SAM encoder thread's entry: TypeScript through tsx, as in the main thread (src/bin.js).
import { register } from 'tsx/esm/api';

register();
await import('./sam-thread-host.ts');
