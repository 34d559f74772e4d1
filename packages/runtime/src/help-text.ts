// The text of `macp-runtime --help`: every variable the executable reads, with
// its default. docs/reference/env-vars.md has the validation rules and details;
// a test keeps the two in step.

import { DEFAULT_BIND_ADDR, DEFAULT_DATA_DIR } from "./config.js";

interface Setting {
  readonly name: string;
  readonly default: string;
  readonly meaning: string;
}

const SECTIONS: readonly { readonly title: string; readonly settings: readonly Setting[] }[] = [
  {
    title: "Network and TLS",
    settings: [
      {
        name: "MACP_BIND_ADDR",
        default: DEFAULT_BIND_ADDR,
        meaning: "listen address, IP:port (port 0 picks a free one)",
      },
      { name: "MACP_TLS_CERT_PATH", default: "unset", meaning: "PEM certificate chain" },
      {
        name: "MACP_TLS_KEY_PATH",
        default: "unset",
        meaning: "PEM private key; TLS is on when both are set",
      },
      {
        name: "MACP_ALLOW_INSECURE",
        default: "off",
        meaning: "1 allows plaintext HTTP/2 and dev-mode authentication",
      },
      {
        name: "MACP_MAX_CONCURRENT_STREAMS",
        default: "128",
        meaning: "HTTP/2 streams per connection",
      },
      {
        name: "MACP_CONCURRENCY_LIMIT_PER_CONNECTION",
        default: "64",
        meaning: "requests of one connection admitted at a time",
      },
      {
        name: "MACP_REQUEST_TIMEOUT_SECS",
        default: "30",
        meaning: "time a request may take to arrive and be answered",
      },
      {
        name: "MACP_HTTP_BIND_ADDR",
        default: "the host of MACP_BIND_ADDR, port + 1",
        meaning: "gRPC-Web, Connect and gRPC for browsers and curl, or off",
      },
      {
        name: "MACP_CORS_ORIGINS",
        default: "unset (off)",
        meaning: "origins whose pages may call the runtime, or *",
      },
      {
        name: "MACP_SHUTDOWN_DRAIN_SECS",
        default: "10",
        meaning: "time calls in flight get to finish after SIGTERM or SIGINT",
      },
    ],
  },
  {
    title: "Authentication",
    settings: [
      { name: "MACP_AUTH_TOKENS_JSON", default: "unset", meaning: "static bearer tokens, inline" },
      {
        name: "MACP_AUTH_TOKENS_FILE",
        default: "unset",
        meaning: "static bearer tokens from a file",
      },
      { name: "MACP_AUTH_ISSUER", default: "unset", meaning: "JWT issuer; turns on JWT auth" },
      { name: "MACP_AUTH_AUDIENCE", default: "macp-runtime", meaning: "JWT audience" },
      { name: "MACP_AUTH_JWKS_JSON", default: "unset", meaning: "JWT verification keys, inline" },
      { name: "MACP_AUTH_JWKS_URL", default: "unset", meaning: "JWT verification keys URL" },
      {
        name: "MACP_AUTH_JWKS_TTL_SECS",
        default: "300",
        meaning: "how long fetched keys are cached",
      },
      {
        name: "MACP_AUTH_JWT_ALGS",
        default: "RS256,ES256",
        meaning: "accepted JWT algorithms",
      },
    ],
  },
  {
    title: "Storage and recovery",
    settings: [
      { name: "MACP_MEMORY_ONLY", default: "off", meaning: "1 keeps everything in memory" },
      { name: "MACP_DATA_DIR", default: DEFAULT_DATA_DIR, meaning: "the file store's directory" },
      { name: "MACP_STORAGE_BACKEND", default: "file", meaning: "durable store: file or postgres" },
      {
        name: "MACP_POSTGRES_URL",
        default: "unset",
        meaning: "the shared database (MACP_STORAGE_BACKEND=postgres)",
      },
      {
        name: "MACP_WORKERS",
        default: "1",
        meaning: "server processes sharing the ports (postgres only)",
      },
      { name: "MACP_ROCKSDB_PATH", default: "unset", meaning: "ignored, with a warning" },
      { name: "MACP_REDIS_URL", default: "unset", meaning: "ignored, with a warning" },
      {
        name: "MACP_STRICT_RECOVERY",
        default: "off",
        meaning: "1 refuses to start on a log that cannot be replayed",
      },
      { name: "MACP_CHECKPOINT_INTERVAL", default: "0", meaning: "accepted, no effect" },
      {
        name: "MACP_SESSION_RETENTION_SECS",
        default: "3600",
        meaning: "how long a finished session stays in memory",
      },
      {
        name: "MACP_SESSION_DISK_RETENTION_SECS",
        default: "0",
        meaning: "age after which a finished session's log is deleted (0 keeps it)",
      },
      { name: "MACP_CLEANUP_INTERVAL_SECS", default: "60", meaning: "eviction sweep interval" },
    ],
  },
  {
    title: "Limits",
    settings: [
      { name: "MACP_MAX_PAYLOAD_BYTES", default: "1048576", meaning: "largest envelope payload" },
      {
        name: "MACP_SESSION_START_LIMIT_PER_MINUTE",
        default: "60",
        meaning: "SessionStarts per sender per minute",
      },
      {
        name: "MACP_MESSAGE_LIMIT_PER_MINUTE",
        default: "600",
        meaning: "other envelopes per sender per minute",
      },
    ],
  },
  {
    title: "Policies",
    settings: [
      {
        name: "MACP_POLICIES_DIR",
        default: "unset",
        meaning: "policy files to preload; the registry is then read-only",
      },
    ],
  },
  {
    title: "Observability",
    settings: [
      {
        name: "MACP_METRICS_ADDR",
        default: "unset (off)",
        meaning: "host:port of the Prometheus endpoint",
      },
      {
        name: "MACP_INSPECTOR",
        default: "off",
        meaning: "1 serves the inspector page at /inspector",
      },
      {
        name: "MACP_LOG_LEVEL",
        default: "info",
        meaning: "trace debug info warn error fatal silent",
      },
      { name: "RUST_LOG", default: "info", meaning: "used when MACP_LOG_LEVEL is unset" },
      { name: "OTEL_EXPORTER_OTLP_ENDPOINT", default: "unset", meaning: "ignored, with a warning" },
    ],
  },
];

/** Every setting `--help` lists, by name, with its default as printed. */
export const HELP_DEFAULTS: ReadonlyMap<string, string> = new Map(
  SECTIONS.flatMap((section) => section.settings.map((s) => [s.name, s.default] as const)),
);

/** The `macp-runtime --help` text for `version`. */
export function helpText(version: string): string {
  const nameWidth = Math.max(...[...HELP_DEFAULTS.keys()].map((name) => name.length)) + 2;
  const defaultWidth = Math.max(...[...HELP_DEFAULTS.values()].map((value) => value.length)) + 2;
  const lines = [
    `macp-runtime ${version}: the MACP runtime server (gRPC at MACP_BIND_ADDR; gRPC-Web, Connect and gRPC at MACP_HTTP_BIND_ADDR)`,
    "",
    "Usage: macp-runtime [--help | --version]",
    "",
    "Configured only through environment variables. Flags are on only for the value 1.",
    "Without TLS and authentication it refuses to start unless MACP_ALLOW_INSECURE=1.",
    "Stop it with SIGTERM or SIGINT: calls in flight finish, then it exits 0.",
  ];
  for (const section of SECTIONS) {
    lines.push("", `${section.title} (variable, default, meaning):`);
    for (const { name, default: value, meaning } of section.settings) {
      lines.push(`  ${name.padEnd(nameWidth)}${value.padEnd(defaultWidth)}${meaning}`);
    }
  }
  lines.push("", "Details: docs/reference/env-vars.md in the macp-ts repository.");
  return `${lines.join("\n")}\n`;
}
