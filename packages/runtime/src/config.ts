// The MACP_* environment of the reference runtime, read into one settled
// configuration. Variables the reference validates refuse start-up here too;
// the ones it silently defaults still default, but with a warning the host logs.

import { existsSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { type AuthEnvConfig, authConfigFromEnv } from "./auth-config-from-env.js";

/** The environment as `process.env` presents it. */
export type Environment = Readonly<Record<string, string | undefined>>;

/** Pino's levels; `silent` turns logging off (RUST_LOG=off). */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

export const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warn",
  "error",
  "fatal",
  "silent",
];

/** A literal socket address: an IPv4 or IPv6 address and a port. */
export interface SocketAddress {
  /** The IP address without brackets. */
  readonly host: string;
  /** 0 asks the system for a free port. */
  readonly port: number;
}

/** A metrics listener address; unlike the gRPC address it may name a host. */
export interface MetricsAddress {
  readonly host: string;
  readonly port: number;
}

export type StorageConfig =
  | { readonly kind: "memory" }
  | { readonly kind: "file"; readonly directory: string }
  /** MACP_STORAGE_BACKEND=postgres: instances sharing MACP_POSTGRES_URL behave as one runtime. */
  | { readonly kind: "postgres"; readonly url: string };

export interface RuntimeConfig {
  /** MACP_BIND_ADDR: gRPC (@grpc/grpc-js), where the SDKs connect. Default 127.0.0.1:50051. */
  readonly bind: SocketAddress;
  /**
   * MACP_HTTP_BIND_ADDR: gRPC-Web, the Connect protocol and gRPC over Connect
   * on node:http2 (HTTP/2; HTTP/1.1 too over TLS), for browsers and curl. Default: the
   * host of MACP_BIND_ADDR, port + 1 (port 0 stays 0); `off` serves none.
   */
  readonly httpBind: SocketAddress | undefined;
  /** MACP_TLS_CERT_PATH + MACP_TLS_KEY_PATH; TLS is on only when both are set. */
  readonly tls: { readonly certPath: string; readonly keyPath: string } | undefined;
  /** MACP_ALLOW_INSECURE is exactly "1": plaintext and dev-mode auth are allowed. */
  readonly allowInsecure: boolean;
  /** The MACP_AUTH_* settings, as @macp/auth read them. */
  readonly auth: AuthEnvConfig;
  /** MACP_MEMORY_ONLY, MACP_STORAGE_BACKEND and MACP_DATA_DIR. */
  readonly storage: StorageConfig;
  /** MACP_WORKERS: server processes sharing the port (postgres backend only). Default 1. */
  readonly workers: number;
  /** MACP_STRICT_RECOVERY is exactly "1". */
  readonly strictRecovery: boolean;
  /** MACP_POLICIES_DIR: policy files to preload; the wire registry is then read-only. */
  readonly policiesDir: string | undefined;
  /** MACP_INSPECTOR is exactly "1": serve the inspector page at /inspector and its InspectorService. */
  readonly inspector: boolean;
  /** MACP_MAX_PAYLOAD_BYTES. Default 1,048,576. */
  readonly maxPayloadBytes: number;
  /** The largest gRPC message accepted: the payload limit + 64 KiB, as in the reference. */
  readonly maxReceiveMessageBytes: number;
  /** MACP_SESSION_START_LIMIT_PER_MINUTE. Default 60. */
  readonly sessionStartsPerMinute: number;
  /** MACP_MESSAGE_LIMIT_PER_MINUTE. Default 600. */
  readonly messagesPerMinute: number;
  /** MACP_CHECKPOINT_INTERVAL. Default 0 (off). */
  readonly checkpointInterval: number;
  /** MACP_CLEANUP_INTERVAL_SECS in ms. Default 60 s. */
  readonly cleanupIntervalMs: number;
  /** MACP_SESSION_RETENTION_SECS in ms. Default 1 h. */
  readonly sessionRetentionMs: number;
  /** MACP_SESSION_DISK_RETENTION_SECS in ms; 0 keeps durable data forever (the default). */
  readonly sessionDiskRetentionMs: number;
  /** MACP_CONCURRENCY_LIMIT_PER_CONNECTION. Default 64. */
  readonly concurrencyLimitPerConnection: number;
  /** MACP_MAX_CONCURRENT_STREAMS. Default 128. */
  readonly maxConcurrentStreams: number;
  /** MACP_REQUEST_TIMEOUT_SECS in ms. Default 30 s. */
  readonly requestTimeoutMs: number;
  /** MACP_SHUTDOWN_DRAIN_SECS in ms. Default 10 s. */
  readonly shutdownDrainMs: number;
  /** MACP_CORS_ORIGINS: origins whose pages may call the runtime; empty (the default) turns CORS off. */
  readonly corsOrigins: readonly string[];
  /** MACP_METRICS_ADDR; undefined turns the endpoint off (the default). */
  readonly metrics: MetricsAddress | undefined;
  /** MACP_LOG_LEVEL, else RUST_LOG. Default info. */
  readonly logLevel: LogLevel;
  /** Settings that were ignored or replaced by a default; logged at start-up. */
  readonly warnings: readonly string[];
}

/** A setting that stops the runtime from starting. */
export interface ConfigError {
  /** The environment variable at fault. */
  readonly variable: string;
  /** A one-line message that starts with the variable's name. */
  readonly message: string;
}

export type ConfigResult =
  | { readonly ok: true; readonly config: RuntimeConfig }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

export const DEFAULT_BIND_ADDR = "127.0.0.1:50051";
export const DEFAULT_DATA_DIR = ".macp-data";
/** Room for the envelope around the largest payload (the reference's frame allowance). */
export const FRAME_OVERHEAD_BYTES = 65_536;
// gRPC frames carry a 32-bit length, so no message limit can exceed this.
const MAX_FRAME_BYTES = 0xffff_ffff;
// Node timers overflow above this many ms and then fire at once.
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Reads every MACP_* variable of the reference runtime (and MACP_LOG_LEVEL,
 * RUST_LOG) from `env`. Returns every refusal found, not only the first; each
 * names its variable. The only I/O is checking that TLS files exist and
 * reading MACP_AUTH_TOKENS_FILE.
 */
export function loadConfig(env: Environment = process.env): ConfigResult {
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const refuse = (variable: string, detail: string) =>
    errors.push({ variable, message: `${variable}: ${detail}` });

  const allowInsecure = readFlag(env, "MACP_ALLOW_INSECURE", warnings);

  const bindText = env.MACP_BIND_ADDR ?? DEFAULT_BIND_ADDR;
  const bind = parseSocketAddress(bindText);
  if (bind === undefined) {
    refuse(
      "MACP_BIND_ADDR",
      `${JSON.stringify(bindText)} is not a literal IP:port socket address (e.g. 127.0.0.1:50051 or [::1]:50051); host names are not resolved`,
    );
  }

  const httpBind = bind === undefined ? undefined : readHttpBind(env, bind, refuse);

  const tls = readTls(env, allowInsecure, refuse, warnings);

  const auth = authConfigFromEnv(env);
  if (!auth.ok) {
    for (const error of auth.errors) errors.push(error);
  } else {
    warnings.push(...auth.value.warnings);
  }

  const storage = readStorage(env, refuse, warnings);
  const workers = positiveInteger(env, "MACP_WORKERS", 1, refuse);
  if (workers > 1 && storage.kind !== "postgres") {
    refuse("MACP_WORKERS", "more than one worker needs MACP_STORAGE_BACKEND=postgres");
  }
  const strictRecovery = readFlag(env, "MACP_STRICT_RECOVERY", warnings);
  const inspector = readFlag(env, "MACP_INSPECTOR", warnings);

  let policiesDir = env.MACP_POLICIES_DIR;
  if (policiesDir === "") {
    refuse("MACP_POLICIES_DIR", "must name a directory (unset it to keep the registry writable)");
    policiesDir = undefined;
  }

  const maxPayloadBytes = positiveInteger(env, "MACP_MAX_PAYLOAD_BYTES", 1_048_576, refuse);
  const sessionStartsPerMinute = positiveInteger(
    env,
    "MACP_SESSION_START_LIMIT_PER_MINUTE",
    60,
    refuse,
  );
  const messagesPerMinute = positiveInteger(env, "MACP_MESSAGE_LIMIT_PER_MINUTE", 600, refuse);
  const checkpointInterval = nonNegativeInteger(env, "MACP_CHECKPOINT_INTERVAL", 0, refuse);

  // The reference falls back silently on these; a warning is kinder to operators.
  const lenient = (variable: string, fallback: number, allowZero: boolean, why?: string) =>
    lenientInteger(env, variable, fallback, allowZero, warnings, why);
  const cleanupIntervalSecs = lenient(
    "MACP_CLEANUP_INTERVAL_SECS",
    60,
    false,
    "a sweep period of 0 would never let the sweep run",
  );
  const sessionRetentionSecs = lenient("MACP_SESSION_RETENTION_SECS", 3600, true);
  const sessionDiskRetentionSecs = lenient("MACP_SESSION_DISK_RETENTION_SECS", 0, true);
  const concurrencyLimitPerConnection = lenient(
    "MACP_CONCURRENCY_LIMIT_PER_CONNECTION",
    64,
    false,
    "a limit of 0 would stall every request",
  );
  const maxConcurrentStreams = lenient(
    "MACP_MAX_CONCURRENT_STREAMS",
    128,
    false,
    "HTTP/2 with 0 concurrent streams cannot carry a single call",
  );
  const requestTimeoutSecs = lenient(
    "MACP_REQUEST_TIMEOUT_SECS",
    30,
    false,
    "a timeout of 0 would fail every request",
  );
  const shutdownDrainSecs = lenient("MACP_SHUTDOWN_DRAIN_SECS", 10, true);
  const corsOrigins = readCorsOrigins(env, refuse);

  const metrics = readMetricsAddress(env, warnings);
  const logLevel = readLogLevel(env, warnings);
  warnIgnored(env, storage, warnings);

  if (errors.length > 0 || bind === undefined || !auth.ok) {
    return { ok: false, errors };
  }
  return {
    ok: true,
    config: {
      bind,
      httpBind,
      tls,
      allowInsecure,
      auth: auth.value,
      storage,
      workers,
      strictRecovery,
      policiesDir,
      inspector,
      maxPayloadBytes,
      maxReceiveMessageBytes: Math.min(maxPayloadBytes + FRAME_OVERHEAD_BYTES, MAX_FRAME_BYTES),
      sessionStartsPerMinute,
      messagesPerMinute,
      checkpointInterval,
      cleanupIntervalMs: timerMs(cleanupIntervalSecs),
      sessionRetentionMs: sessionRetentionSecs * 1000,
      sessionDiskRetentionMs: sessionDiskRetentionSecs * 1000,
      concurrencyLimitPerConnection,
      maxConcurrentStreams,
      requestTimeoutMs: timerMs(requestTimeoutSecs),
      shutdownDrainMs: timerMs(shutdownDrainSecs),
      corsOrigins,
      metrics,
      logLevel,
      warnings,
    },
  };
}

/**
 * Parses `IPv4:port` or `[IPv6]:port`, the forms Rust's SocketAddr accepts.
 * Host names are refused, as in the reference, so the listener never depends
 * on name resolution.
 */
export function parseSocketAddress(text: string): SocketAddress | undefined {
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]:");
    if (close < 0) return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) return undefined;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (!isIPv4(host)) return undefined;
  }
  const port = parsePort(portText);
  return port === undefined ? undefined : { host, port };
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65_535 ? port : undefined;
}

/** `host:port`, bracketing IPv6 literals: the form clients and log lines use. */
export function formatAddress(address: { readonly host: string; readonly port: number }): string {
  return address.host.includes(":")
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}

type Refuse = (variable: string, detail: string) => void;

/** MACP_HTTP_BIND_ADDR, defaulting to the gRPC address's host and the next port. */
function readHttpBind(
  env: Environment,
  bind: SocketAddress,
  refuse: Refuse,
): SocketAddress | undefined {
  const text = env.MACP_HTTP_BIND_ADDR;
  if (text === "off") return undefined;
  if (text === undefined) {
    if (bind.port === 65_535) {
      refuse(
        "MACP_HTTP_BIND_ADDR",
        "MACP_BIND_ADDR uses port 65535, so the default (the next port) does not exist; set an address or off",
      );
      return undefined;
    }
    return { host: bind.host, port: bind.port === 0 ? 0 : bind.port + 1 };
  }
  const address = parseSocketAddress(text);
  if (address === undefined) {
    refuse(
      "MACP_HTTP_BIND_ADDR",
      `${JSON.stringify(text)} is not a literal IP:port socket address (e.g. 127.0.0.1:50052) or off`,
    );
  } else if (address.port !== 0 && address.host === bind.host && address.port === bind.port) {
    refuse("MACP_HTTP_BIND_ADDR", "must differ from MACP_BIND_ADDR (gRPC has its own listener)");
  }
  return address;
}

function readTls(
  env: Environment,
  allowInsecure: boolean,
  refuse: Refuse,
  warnings: string[],
): RuntimeConfig["tls"] {
  const certPath = env.MACP_TLS_CERT_PATH;
  const keyPath = env.MACP_TLS_KEY_PATH;
  let missing = false;
  for (const [variable, path] of [
    ["MACP_TLS_CERT_PATH", certPath],
    ["MACP_TLS_KEY_PATH", keyPath],
  ] as const) {
    if (path !== undefined && !existsSync(path)) {
      refuse(variable, `file not found: ${JSON.stringify(path)}`);
      missing = true;
    }
  }
  if (certPath !== undefined && keyPath !== undefined) {
    return missing ? undefined : { certPath, keyPath };
  }
  const half =
    certPath !== undefined
      ? "MACP_TLS_CERT_PATH is set but MACP_TLS_KEY_PATH is not"
      : keyPath !== undefined
        ? "MACP_TLS_KEY_PATH is set but MACP_TLS_CERT_PATH is not"
        : undefined;
  if (!allowInsecure) {
    const variable = certPath === undefined ? "MACP_TLS_CERT_PATH" : "MACP_TLS_KEY_PATH";
    refuse(
      variable,
      `TLS is required unless MACP_ALLOW_INSECURE=1 is set: ${half ?? "set MACP_TLS_CERT_PATH and MACP_TLS_KEY_PATH to PEM files"}`,
    );
  } else if (half !== undefined) {
    warnings.push(`${half}; TLS needs both, so the runtime serves plaintext`);
  }
  return undefined;
}

/**
 * A reference flag: on only for exactly "1". Any value other than "1", "0"
 * or empty is probably meant as "on" (`true`, `yes`), so it gets a warning.
 */
function readFlag(env: Environment, variable: string, warnings: string[]): boolean {
  const value = env[variable];
  if (value === "1") return true;
  if (value !== undefined && value !== "0" && value !== "") {
    warnings.push(
      `${variable}=${JSON.stringify(value)} counts as off: only the exact value 1 turns it on`,
    );
  }
  return false;
}

function readStorage(env: Environment, refuse: Refuse, warnings: string[]): StorageConfig {
  const backend = env.MACP_STORAGE_BACKEND;
  if (readFlag(env, "MACP_MEMORY_ONLY", warnings)) {
    if (backend !== undefined && backend !== "file") {
      warnings.push(`MACP_STORAGE_BACKEND=${backend} is ignored because MACP_MEMORY_ONLY=1`);
    }
    return { kind: "memory" };
  }
  if (backend === "postgres") return readPostgres(env, refuse, warnings);
  const directory = env.MACP_DATA_DIR ?? DEFAULT_DATA_DIR;
  if (directory === "") refuse("MACP_DATA_DIR", "must name a directory");
  switch (backend) {
    case undefined:
    case "file":
      break;
    case "rocksdb":
    case "redis":
      refuse(
        "MACP_STORAGE_BACKEND",
        `the ${backend} backend is not available in this runtime; use file (the default), postgres or MACP_MEMORY_ONLY=1`,
      );
      break;
    default:
      refuse(
        "MACP_STORAGE_BACKEND",
        `unknown storage backend ${JSON.stringify(backend)}; the backends are file and postgres (or set MACP_MEMORY_ONLY=1)`,
      );
  }
  return { kind: "file", directory };
}

function readPostgres(env: Environment, refuse: Refuse, warnings: string[]): StorageConfig {
  const url = env.MACP_POSTGRES_URL ?? "";
  if (!/^postgres(ql)?:\/\//.test(url)) {
    refuse(
      "MACP_POSTGRES_URL",
      "MACP_STORAGE_BACKEND=postgres needs a libpq URL such as postgres://user:password@host:5432/macp",
    );
  }
  if (env.MACP_DATA_DIR !== undefined) {
    warnings.push("MACP_DATA_DIR is ignored with MACP_STORAGE_BACKEND=postgres");
  }
  return { kind: "postgres", url };
}

function positiveInteger(
  env: Environment,
  variable: string,
  fallback: number,
  refuse: Refuse,
): number {
  const text = env[variable];
  if (text === undefined) return fallback;
  const value = parseWholeNumber(text);
  if (value === undefined || value === 0) {
    refuse(variable, `expected a positive integer, got ${JSON.stringify(text)}`);
    return fallback;
  }
  return value;
}

function nonNegativeInteger(
  env: Environment,
  variable: string,
  fallback: number,
  refuse: Refuse,
): number {
  const text = env[variable];
  if (text === undefined) return fallback;
  const value = parseWholeNumber(text);
  if (value === undefined) {
    refuse(variable, `expected a non-negative integer, got ${JSON.stringify(text)}`);
    return fallback;
  }
  return value;
}

function lenientInteger(
  env: Environment,
  variable: string,
  fallback: number,
  allowZero: boolean,
  warnings: string[],
  whyNotZero?: string,
): number {
  const text = env[variable];
  if (text === undefined) return fallback;
  const value = parseWholeNumber(text);
  if (value === undefined) {
    warnings.push(
      `${variable}=${JSON.stringify(text)} is not a whole number; using the default ${fallback}`,
    );
    return fallback;
  }
  if (value === 0 && !allowZero) {
    warnings.push(`${variable}=0 is not usable (${whyNotZero}); using the default ${fallback}`);
    return fallback;
  }
  return value;
}

/** Decimal digits only (as Rust's unsigned parse, minus a leading '+'), within 2^53. */
function parseWholeNumber(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

function timerMs(seconds: number): number {
  return Math.min(seconds * 1000, MAX_TIMER_MS);
}

/**
 * A comma-separated list of origins (`https://console.example.com`, scheme,
 * host and port only) or `*`. A typo here would silently lock the browser
 * clients out, so anything that is not an origin refuses start-up.
 */
function readCorsOrigins(env: Environment, refuse: Refuse): string[] {
  const text = env.MACP_CORS_ORIGINS;
  if (text === undefined || text.trim() === "") return [];
  const origins: string[] = [];
  for (const entry of text.split(",")) {
    const origin = entry.trim();
    if (origin === "*" || isOrigin(origin)) {
      origins.push(origin);
    } else {
      refuse(
        "MACP_CORS_ORIGINS",
        `${JSON.stringify(origin)} is not an origin: expected scheme://host[:port] with no path (e.g. https://console.example.com), or *`,
      );
    }
  }
  return origins;
}

function isOrigin(text: string): boolean {
  try {
    const url = new URL(text);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === text;
  } catch {
    return false;
  }
}

function readMetricsAddress(env: Environment, warnings: string[]): MetricsAddress | undefined {
  const text = env.MACP_METRICS_ADDR;
  if (text === undefined || text === "") return undefined;
  // Like the reference, a bad metrics address costs the metrics, not the runtime.
  const literal = parseSocketAddress(text);
  if (literal !== undefined) return literal;
  const colon = text.lastIndexOf(":");
  const host = colon > 0 ? text.slice(0, colon) : "";
  const port = colon > 0 ? parsePort(text.slice(colon + 1)) : undefined;
  if (port === undefined || !/^[A-Za-z0-9.-]+$/.test(host)) {
    warnings.push(
      `MACP_METRICS_ADDR=${JSON.stringify(text)} is not a host:port address; the metrics endpoint is off`,
    );
    return undefined;
  }
  return { host, port };
}

/**
 * MACP_LOG_LEVEL wins; otherwise the reference's RUST_LOG is honoured as far
 * as it names a plain level. RUST_LOG's per-target directives have no
 * counterpart here: the level of a `macp…=level` directive is used, else the
 * bare level, else info.
 */
function readLogLevel(env: Environment, warnings: string[]): LogLevel {
  const own = env.MACP_LOG_LEVEL;
  if (own !== undefined && own !== "") {
    const level = levelNamed(own);
    if (level !== undefined) return level;
    warnings.push(
      `MACP_LOG_LEVEL=${JSON.stringify(own)} is not one of ${LOG_LEVELS.join(", ")} (or off); using info`,
    );
    return "info";
  }
  const rust = env.RUST_LOG;
  if (rust === undefined || rust === "") return "info";
  let bare: LogLevel | undefined;
  let targeted: LogLevel | undefined;
  for (const directive of rust.split(",")) {
    const [target, level] = directive.includes("=")
      ? (directive.split("=", 2) as [string, string])
      : [undefined, directive];
    const parsed = levelNamed(level);
    if (parsed === undefined) continue;
    if (target === undefined) bare = parsed;
    else if (target.trim().startsWith("macp")) targeted = parsed;
  }
  const level = targeted ?? bare;
  if (level === undefined) {
    warnings.push(
      `RUST_LOG=${JSON.stringify(rust)} names no log level this runtime knows; using info`,
    );
    return "info";
  }
  return level;
}

function levelNamed(text: string): LogLevel | undefined {
  const name = text.trim().toLowerCase();
  if (name === "off") return "silent";
  if (name === "warning") return "warn";
  return LOG_LEVELS.find((level) => level === name);
}

function warnIgnored(env: Environment, storage: StorageConfig, warnings: string[]): void {
  for (const variable of ["MACP_ROCKSDB_PATH", "MACP_REDIS_URL"]) {
    if (env[variable] !== undefined) {
      warnings.push(
        `${variable} is ignored: this runtime has no ${variable.includes("REDIS") ? "Redis" : "RocksDB"} backend`,
      );
    }
  }
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT !== undefined) {
    warnings.push("OTEL_EXPORTER_OTLP_ENDPOINT is ignored: this runtime exports no traces");
  }
  if (storage.kind === "memory" && env.MACP_STRICT_RECOVERY === "1") {
    warnings.push(
      "MACP_STRICT_RECOVERY=1 has no effect with MACP_MEMORY_ONLY=1: nothing is recovered",
    );
  }
}
