export { loadConfig, defaultConfigFile, type LoadConfigOptions } from './load.js';
export { envVarName, ENV_PREFIX } from './env.js';
export {
  CLI_SURFACE,
  configSchema,
  fields,
  providerNames,
  logLevels,
  type Config,
  type Secrets,
  type SurfaceConfig,
  type SurfaceSettings,
} from './schema.js';
