// Composes the packages into the running server, in the reference's start-up
// order: store, preloaded policies, recovery, authentication, then the
// listener. Every step that can refuse throws a StartupError naming the
// variable an operator has to change.

import cluster from "node:cluster";
import { readFile } from "node:fs/promises";
import { type Authenticator, createAuthenticator } from "@macp/auth";
import { type MacpServer, startMacpServer, startTimerDriver } from "@macp/connect/node";
import {
  type Caller,
  type Clock,
  composeObservers,
  createMemoryStore,
  createRuntime,
  type MacpRuntime,
  type PolicyDefinition,
  type RuntimeLogger,
  type SessionStore,
} from "@macp/core";
import { routeGrpcJsLogs, startMacpGrpcServer } from "@macp/grpc";
import { createRefusalLog } from "@macp/inspector";
import { type FileStore, openFileStore } from "@macp/store-file";
import { createPostgresStore } from "@macp/store-postgres";
import { answerMetricsRequests } from "./cluster-metrics.js";
import { formatAddress, type MetricsAddress, type RuntimeConfig } from "./config.js";
import { createDiskRetention, type DiskRetention } from "./disk-retention.js";
import { type InspectorMount, mountInspector } from "./inspector.js";
import { createLogger, type Logger, runtimeLoggerFrom } from "./logger.js";
import { createRuntimeMetrics, type MetricsServer, startMetricsServer } from "./metrics.js";
import { loadPoliciesDir, PoliciesDirError } from "./policies-dir.js";
import { RUNTIME_VERSION } from "./version.js";

/** A start-up step failed; `message` is one line that starts with the variable to change. */
export class StartupError extends Error {
  readonly variable: string;
  constructor(variable: string, detail: string) {
    super(`${variable}: ${detail}`);
    this.name = "StartupError";
    this.variable = variable;
  }
}

export interface StartRuntimeOptions {
  /** Where logs go. Default: pino JSON on stdout at `config.logLevel`. */
  readonly logger?: Logger;
  /** The runtime's clock. Default: the system clock. */
  readonly clock?: Clock;
}

/** The server `macp-runtime` runs. */
export interface RunningRuntime {
  /** The runtime behind the listener (observed for metrics). */
  readonly runtime: MacpRuntime;
  /** The bound gRPC address; the port is the real one when 0 was configured. */
  readonly address: { readonly host: string; readonly port: number };
  /** Base URL for gRPC clients (the SDKs), e.g. `http://127.0.0.1:50051`. */
  readonly url: string;
  /** The bound gRPC-Web / Connect address (MACP_HTTP_BIND_ADDR); undefined when off. */
  readonly httpAddress: { readonly host: string; readonly port: number } | undefined;
  /** Base URL for gRPC-Web, Connect and browser clients, e.g. `http://127.0.0.1:50052`. */
  readonly httpUrl: string | undefined;
  /** The metrics endpoint, when MACP_METRICS_ADDR is set and could be bound. */
  readonly metricsAddress: MetricsAddress | undefined;
  readonly logger: Logger;
  /**
   * Graceful stop: streams end with UNAVAILABLE, unary calls get `drainMs`
   * (default: the configured drain) to finish, the store is flushed and closed.
   */
  close(options?: { readonly drainMs?: number }): Promise<void>;
}

const systemClock: Clock = { now: () => Date.now() };

/** Starts the runtime server described by `config` (see {@link loadConfig}). */
export async function startRuntime(
  config: RuntimeConfig,
  options: StartRuntimeOptions = {},
): Promise<RunningRuntime> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const clock = options.clock ?? systemClock;
  const runtimeLogger = runtimeLoggerFrom(logger);
  for (const warning of config.warnings) logger.warn(warning);
  if (config.checkpointInterval > 0) {
    logger.warn(
      "MACP_CHECKPOINT_INTERVAL has no effect: this runtime keeps each session's full log and replays it at start-up",
    );
  }

  // What has been opened so far. On a refused step it is closed again, newest
  // first, so a failed start leaves no open files or listeners behind. Each
  // owns the one before it: the server closes the runtime, the runtime the store.
  let opened: OpenedStore | undefined;
  let runtime: MacpRuntime | undefined;
  let authenticator: Authenticator | undefined;
  let server: Listening | undefined;
  try {
    opened = await openStore(config, runtimeLogger);
    let retention: DiskRetention | undefined;
    if (opened.file !== undefined && config.sessionDiskRetentionMs > 0) {
      retention = createDiskRetention({
        store: opened.file,
        clock,
        retentionMs: config.sessionDiskRetentionMs,
        intervalMs: config.cleanupIntervalMs,
        logger,
      });
    }

    const policies = await loadPolicies(config, logger);
    const metrics = createRuntimeMetrics();
    const refusals = config.inspector ? createRefusalLog({ clock }) : undefined;

    runtime = createRuntime({
      clock,
      store: opened.store,
      limits: {
        maxPayloadBytes: config.maxPayloadBytes,
        sessionStartsPerMinute: config.sessionStartsPerMinute,
        messagesPerMinute: config.messagesPerMinute,
        sessionRetentionMs: config.sessionRetentionMs,
      },
      policies,
      policyRegistryReadOnly: config.policiesDir !== undefined,
      runtimeInfo: {
        name: "macp-runtime",
        title: "MACP TypeScript Runtime",
        version: RUNTIME_VERSION,
        description: "The Multi-Agent Coordination Protocol runtime, in TypeScript",
      },
      logger: runtimeLogger,
      strictRecovery: config.strictRecovery,
      observer: composeObservers(metrics.observer, retention?.observer, refusals?.observer),
    });
    metrics.watchSessions(runtime);
    let report: Awaited<ReturnType<MacpRuntime["recover"]>>;
    try {
      report = await runtime.recover();
    } catch (error) {
      // Under strict recovery a damaged session is fatal; otherwise only an
      // unreadable store is, and that is the data directory's problem.
      throw new StartupError(
        config.strictRecovery ? "MACP_STRICT_RECOVERY" : "MACP_DATA_DIR",
        `recovery failed: ${describe(error)}`,
      );
    }
    metrics.recordRecovery(report);
    // The core logs the outcome ("recovery complete") and every quarantined session.

    const auth = createAuthenticatorFromConfig(config, logger);
    authenticator = auth;
    const tls = await readTls(config);
    const authenticate = metrics.instrumentAuthenticate((headers: Headers) =>
      auth.authenticate(headers),
    );
    let inspector: InspectorMount | undefined;
    if (refusals !== undefined) {
      try {
        inspector = mountInspector(runtime, { clock, authenticate, refusals });
      } catch (error) {
        throw new StartupError("MACP_INSPECTOR", describe(error));
      }
    }
    server = await listen(config, {
      runtime,
      authenticate,
      clock,
      tls,
      logger: runtimeLogger,
      inspector,
    });
    const listening = server;

    let metricsServer: MetricsServer | undefined;
    let stopAnsweringMetrics: (() => void) | undefined;
    if (config.metrics !== undefined && config.workers > 1 && cluster.isWorker) {
      // The pool's primary serves the endpoint and asks each worker at every scrape.
      stopAnsweringMetrics = answerMetricsRequests(metrics.registry);
    } else if (config.metrics !== undefined) {
      metricsServer = await startMetricsServer(metrics, config.metrics, logger);
    }
    retention?.start(runtime);

    if (tls === undefined) {
      logger.warn(
        "serving plaintext HTTP/2 and HTTP/1.1 (MACP_ALLOW_INSECURE=1); set MACP_TLS_CERT_PATH and MACP_TLS_KEY_PATH in production",
      );
    }
    logger.info(
      {
        address: formatAddress(listening.address),
        url: listening.url,
        httpUrl: listening.httpUrl ?? null,
        tls: tls !== undefined,
        auth: config.auth.devMode ? "dev" : config.auth.resolvers.join(","),
        storage: config.storage.kind === "file" ? config.storage.directory : config.storage.kind,
        policyRegistryReadOnly: config.policiesDir !== undefined,
        metrics: metricsServer === undefined ? null : formatAddress(metricsServer.address),
        inspector:
          inspector === undefined || listening.httpUrl === undefined
            ? null
            : `${listening.httpUrl}/inspector/`,
      },
      `macp-runtime v${RUNTIME_VERSION} listening`,
    );

    let closing: Promise<void> | undefined;
    return {
      runtime: listening.runtime,
      address: listening.address,
      url: listening.url,
      httpAddress: listening.httpAddress,
      httpUrl: listening.httpUrl,
      metricsAddress: metricsServer?.address,
      logger,
      close(closeOptions = {}) {
        closing ??= (async () => {
          await retention?.stop();
          await listening.close({ drainMs: closeOptions.drainMs ?? config.shutdownDrainMs });
          await metricsServer?.close();
          stopAnsweringMetrics?.();
          auth.close();
          logger.info("state persisted, goodbye");
        })();
        return closing;
      },
    };
  } catch (error) {
    try {
      if (server !== undefined) await server.close({ drainMs: 0 });
      else if (runtime !== undefined) await runtime.close();
      else await opened?.store.close();
    } catch (cleanupError) {
      logger.warn({ err: cleanupError }, "cleanup after a failed start-up failed");
    }
    authenticator?.close();
    throw error;
  }
}

/** The started listeners and the (instrumented) runtime behind them. */
interface Listening extends MacpServer {
  readonly runtime: MacpRuntime;
  readonly httpAddress: MacpServer["address"] | undefined;
  readonly httpUrl: string | undefined;
}

interface ListenParts {
  readonly runtime: MacpRuntime;
  readonly authenticate: (headers: Headers) => Caller | Promise<Caller>;
  readonly clock: Clock;
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  readonly logger: RuntimeLogger;
  readonly inspector: InspectorMount | undefined;
}

/**
 * Starts the listeners over one runtime: gRPC on @grpc/grpc-js at
 * MACP_BIND_ADDR (the SDKs' path, the cheapest per call), and Connect on
 * node:http2 at MACP_HTTP_BIND_ADDR for gRPC-Web, the Connect protocol and
 * browsers. Both share the runtime, the authenticate hook, TLS and limits;
 * the timer driver runs once, and the runtime closes after both listeners.
 */
async function listen(config: RuntimeConfig, parts: ListenParts): Promise<Listening> {
  routeGrpcJsLogs(parts.logger);
  const grpc = await listenOn("MACP_BIND_ADDR", config.bind, parts, () =>
    startMacpGrpcServer({
      runtime: parts.runtime,
      closeRuntime: false,
      authenticate: parts.authenticate,
      clock: parts.clock,
      host: config.bind.host,
      port: config.bind.port,
      ...(parts.tls === undefined ? {} : { tls: parts.tls }),
      maxReceiveMessageBytes: config.maxReceiveMessageBytes,
      maxConcurrentStreams: config.maxConcurrentStreams,
      requestTimeoutMs: config.requestTimeoutMs,
      concurrencyLimitPerConnection: config.concurrencyLimitPerConnection,
      logger: parts.logger,
    }),
  );
  let http: MacpServer | undefined;
  if (config.httpBind !== undefined) {
    const httpBind = config.httpBind;
    try {
      http = await listenOn("MACP_HTTP_BIND_ADDR", httpBind, parts, () =>
        startMacpServer({
          runtime: parts.runtime,
          closeRuntime: false,
          timerDriver: false,
          authenticate: parts.authenticate,
          clock: parts.clock,
          host: httpBind.host,
          port: httpBind.port,
          ...(parts.tls === undefined ? {} : { tls: parts.tls }),
          maxReceiveMessageBytes: config.maxReceiveMessageBytes,
          maxConcurrentStreams: config.maxConcurrentStreams,
          requestTimeoutMs: config.requestTimeoutMs,
          concurrencyLimitPerConnection: config.concurrencyLimitPerConnection,
          ...(config.corsOrigins.length === 0
            ? {}
            : { cors: { allowedOrigins: config.corsOrigins } }),
          logger: parts.logger,
          ...(parts.inspector === undefined
            ? {}
            : { extraRoutes: parts.inspector.extraRoutes, fallback: parts.inspector.fallback }),
        }),
      );
    } catch (error) {
      await grpc.close({ drainMs: 0 });
      throw error;
    }
  }
  const timers = startTimerDriver(parts.runtime, {
    clock: parts.clock,
    cleanupIntervalMs: config.cleanupIntervalMs,
    logger: parts.logger,
  });
  const listeners = http === undefined ? [grpc] : [grpc, http];
  return {
    runtime: parts.runtime,
    address: grpc.address,
    url: grpc.url,
    httpAddress: http?.address,
    httpUrl: http?.url,
    async close(options) {
      await Promise.all(listeners.map((listener) => listener.close(options)));
      await timers.stop();
      await parts.runtime.close();
    },
  };
}

/** Starts one listener, turning a failure into the variable to blame. */
async function listenOn<T>(
  variable: string,
  address: SocketAddressLike,
  parts: ListenParts,
  start: () => Promise<T>,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const listenFailure =
      (typeof code === "string" && /^(EADDR|EACCES|EPERM)/.test(code)) ||
      /No address added out of total|EADDRINUSE|EACCES/.test(describe(error));
    if (parts.tls !== undefined && !listenFailure) {
      throw new StartupError(
        "MACP_TLS_CERT_PATH",
        `the certificate and key in MACP_TLS_CERT_PATH / MACP_TLS_KEY_PATH are not usable: ${describe(error)}`,
      );
    }
    throw new StartupError(
      variable,
      `cannot listen on ${formatAddress(address)}: ${describe(error)}`,
    );
  }
}

type SocketAddressLike = { readonly host: string; readonly port: number };

/** The store to run on; `file` is set when it is the durable file store. */
interface OpenedStore {
  readonly store: SessionStore;
  readonly file: FileStore | undefined;
}

async function openStore(config: RuntimeConfig, logger: RuntimeLogger): Promise<OpenedStore> {
  if (config.storage.kind === "memory") return { store: createMemoryStore(), file: undefined };
  if (config.storage.kind === "postgres") return openPostgres(config.storage.url, logger);
  try {
    const file = await openFileStore({
      directory: config.storage.directory,
      logger,
      deleteTerminalAfterMs: config.sessionDiskRetentionMs,
    });
    return { store: file, file };
  } catch (error) {
    throw new StartupError("MACP_DATA_DIR", describe(error));
  }
}

async function openPostgres(url: string, logger: RuntimeLogger): Promise<OpenedStore> {
  try {
    const store = await createPostgresStore({
      url,
      onFeedError: (error) =>
        logger.warn("the PostgreSQL change feed lost its connection; reconnecting", {
          error: error.message,
        }),
    });
    return { store, file: undefined };
  } catch (error) {
    throw new StartupError("MACP_POSTGRES_URL", describe(error));
  }
}

async function loadPolicies(config: RuntimeConfig, logger: Logger): Promise<PolicyDefinition[]> {
  if (config.policiesDir === undefined) return [];
  try {
    const policies = await loadPoliciesDir(config.policiesDir);
    logger.info(
      { directory: config.policiesDir, policies: policies.map((policy) => policy.policyId) },
      `loaded ${policies.length} policies from MACP_POLICIES_DIR; the policy registry is read-only`,
    );
    return policies;
  } catch (error) {
    if (error instanceof PoliciesDirError) {
      throw new StartupError(error.variable, error.message.slice(error.variable.length + 2));
    }
    throw error;
  }
}

function createAuthenticatorFromConfig(config: RuntimeConfig, logger: Logger): Authenticator {
  let authenticator: Authenticator;
  try {
    authenticator = createAuthenticator(config.auth.options);
  } catch (error) {
    // authConfigFromEnv has already validated these settings, so this is a
    // safety net; it blames the variable that configured the failing resolver.
    const variable =
      config.auth.options.jwt !== undefined ? "MACP_AUTH_ISSUER" : "MACP_AUTH_TOKENS_JSON";
    throw new StartupError(variable, describe(error));
  }
  // Dev mode's warning is among the configuration warnings already logged.
  if (!authenticator.devMode) {
    logger.info({ resolvers: authenticator.resolvers }, "auth resolver chain initialized");
  }
  return authenticator;
}

async function readTls(
  config: RuntimeConfig,
): Promise<{ readonly cert: Buffer; readonly key: Buffer } | undefined> {
  if (config.tls === undefined) return undefined;
  const read = async (variable: string, path: string): Promise<Buffer> => {
    try {
      return await readFile(path);
    } catch (error) {
      throw new StartupError(variable, `cannot read ${JSON.stringify(path)}: ${describe(error)}`);
    }
  };
  return {
    cert: await read("MACP_TLS_CERT_PATH", config.tls.certPath),
    key: await read("MACP_TLS_KEY_PATH", config.tls.keyPath),
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
