// @macp/runtime: the `macp-runtime` server. The executable is dist/main.js;
// this entry point exposes its pieces for hosts that want the same
// configuration and composition in their own process.

export {
  type AuthEnvConfig,
  type AuthEnvError,
  type AuthEnvResult,
  authConfigFromEnv,
} from "./auth-config-from-env.js";
export {
  type ConfigError,
  type ConfigResult,
  DEFAULT_BIND_ADDR,
  DEFAULT_DATA_DIR,
  type Environment,
  FRAME_OVERHEAD_BYTES,
  formatAddress,
  LOG_LEVELS,
  type LogLevel,
  loadConfig,
  type MetricsAddress,
  parseSocketAddress,
  type RuntimeConfig,
  type SocketAddress,
  type StorageConfig,
} from "./config.js";
export { createLogger, runtimeLoggerFrom } from "./logger.js";
export {
  createRuntimeMetrics,
  type MetricsServer,
  type RuntimeMetrics,
  type RuntimeMetricsOptions,
  startMetricsServer,
} from "./metrics.js";
export { loadPoliciesDir, PoliciesDirError } from "./policies-dir.js";
export {
  type RunningRuntime,
  type StartRuntimeOptions,
  StartupError,
  startRuntime,
} from "./start-runtime.js";
export { RUNTIME_VERSION } from "./version.js";
