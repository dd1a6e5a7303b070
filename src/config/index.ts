export { loadConfig, defaultConfigFile, type LoadConfigOptions } from './load.js';
export { envVarName } from './env.js';
export {
  fields,
  providerNames,
  type Config,
  type Secrets,
  type SurfaceConfig,
} from './schema.js';
