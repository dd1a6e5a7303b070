export { loadConfig, defaultConfigFile, type LoadConfigOptions } from './load.js';
export { envVarName, ENV_PREFIX } from './env.js';
export {
  configSchema,
  secretNames,
  providerNames,
  renderFormats,
  logLevels,
  type Config,
  type FileConfig,
  type SecretName,
  type Secrets,
} from './schema.js';
