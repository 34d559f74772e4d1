import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ConfigResult,
  type Environment,
  loadConfig,
  parseSocketAddress,
} from "../src/config.js";

const DEV: Environment = { MACP_ALLOW_INSECURE: "1" };

function configOf(env: Environment) {
  const result = loadConfig(env);
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("\n"));
  return result.config;
}

function refusals(result: ConfigResult): { variable: string; message: string }[] {
  if (result.ok) throw new Error("expected a refusal");
  return [...result.errors];
}

/** The single refusal of `env`, which must name `variable`. */
function refusalOf(env: Environment, variable: string): string {
  const errors = refusals(loadConfig(env));
  const mine = errors.filter((error) => error.variable === variable);
  expect(mine, JSON.stringify(errors)).toHaveLength(1);
  const message = mine[0]?.message ?? "";
  expect(message.startsWith(`${variable}: `)).toBe(true);
  return message;
}

describe("loadConfig defaults", () => {
  it("matches the reference runtime's defaults", () => {
    const config = configOf(DEV);
    expect(config.bind).toEqual({ host: "127.0.0.1", port: 50051 });
    expect(config.httpBind).toEqual({ host: "127.0.0.1", port: 50052 });
    expect(config.tls).toBeUndefined();
    expect(config.allowInsecure).toBe(true);
    expect(config.auth.devMode).toBe(true);
    expect(config.storage).toEqual({ kind: "file", directory: ".macp-data" });
    expect(config.strictRecovery).toBe(false);
    expect(config.policiesDir).toBeUndefined();
    expect(config.inspector).toBe(false);
    expect(config.maxPayloadBytes).toBe(1_048_576);
    expect(config.maxReceiveMessageBytes).toBe(1_048_576 + 65_536);
    expect(config.sessionStartsPerMinute).toBe(60);
    expect(config.messagesPerMinute).toBe(600);
    expect(config.checkpointInterval).toBe(0);
    expect(config.cleanupIntervalMs).toBe(60_000);
    expect(config.sessionRetentionMs).toBe(3_600_000);
    expect(config.sessionDiskRetentionMs).toBe(0);
    expect(config.concurrencyLimitPerConnection).toBe(64);
    expect(config.maxConcurrentStreams).toBe(128);
    expect(config.requestTimeoutMs).toBe(30_000);
    expect(config.shutdownDrainMs).toBe(10_000);
    expect(config.corsOrigins).toEqual([]);
    expect(config.metrics).toBeUndefined();
    expect(config.logLevel).toBe("info");
  });

  it("warns about dev mode but does not refuse it", () => {
    expect(configOf(DEV).warnings.some((w) => w.includes("dev mode"))).toBe(true);
  });
});

describe("loadConfig reads every variable", () => {
  let dir: string;
  let cert: string;
  let key: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "macp-runtime-config-"));
    cert = join(dir, "server.crt");
    key = join(dir, "server.key");
    writeFileSync(cert, "not checked here");
    writeFileSync(key, "not checked here");
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it("takes every value it is given", () => {
    const config = configOf({
      MACP_BIND_ADDR: "0.0.0.0:6000",
      MACP_TLS_CERT_PATH: cert,
      MACP_TLS_KEY_PATH: key,
      MACP_AUTH_TOKENS_JSON: JSON.stringify([{ token: "t1", sender: "agent://a" }]),
      MACP_DATA_DIR: "/var/lib/macp",
      MACP_STORAGE_BACKEND: "file",
      MACP_STRICT_RECOVERY: "1",
      MACP_POLICIES_DIR: "/etc/macp/policies",
      MACP_MAX_PAYLOAD_BYTES: "2048",
      MACP_SESSION_START_LIMIT_PER_MINUTE: "5",
      MACP_MESSAGE_LIMIT_PER_MINUTE: "7",
      MACP_CHECKPOINT_INTERVAL: "100",
      MACP_CLEANUP_INTERVAL_SECS: "5",
      MACP_SESSION_RETENTION_SECS: "0",
      MACP_SESSION_DISK_RETENTION_SECS: "86400",
      MACP_CONCURRENCY_LIMIT_PER_CONNECTION: "8",
      MACP_MAX_CONCURRENT_STREAMS: "16",
      MACP_REQUEST_TIMEOUT_SECS: "3",
      MACP_SHUTDOWN_DRAIN_SECS: "0",
      MACP_METRICS_ADDR: "127.0.0.1:9464",
      MACP_LOG_LEVEL: "debug",
    });
    expect(config.bind).toEqual({ host: "0.0.0.0", port: 6000 });
    expect(config.tls).toEqual({ certPath: cert, keyPath: key });
    expect(config.allowInsecure).toBe(false);
    expect(config.auth.devMode).toBe(false);
    expect(config.auth.resolvers).toEqual(["static_bearer"]);
    expect(config.storage).toEqual({ kind: "file", directory: "/var/lib/macp" });
    expect(config.strictRecovery).toBe(true);
    expect(config.policiesDir).toBe("/etc/macp/policies");
    expect(config.maxPayloadBytes).toBe(2048);
    expect(config.maxReceiveMessageBytes).toBe(2048 + 65_536);
    expect(config.sessionStartsPerMinute).toBe(5);
    expect(config.messagesPerMinute).toBe(7);
    expect(config.checkpointInterval).toBe(100);
    expect(config.cleanupIntervalMs).toBe(5000);
    expect(config.sessionRetentionMs).toBe(0);
    expect(config.sessionDiskRetentionMs).toBe(86_400_000);
    expect(config.concurrencyLimitPerConnection).toBe(8);
    expect(config.maxConcurrentStreams).toBe(16);
    expect(config.requestTimeoutMs).toBe(3000);
    expect(config.shutdownDrainMs).toBe(0);
    expect(config.metrics).toEqual({ host: "127.0.0.1", port: 9464 });
    expect(config.logLevel).toBe("debug");
  });

  it("reads MACP_CORS_ORIGINS as a list of origins or *", () => {
    expect(
      configOf({
        ...DEV,
        MACP_CORS_ORIGINS: " https://console.example.com, http://localhost:5173 ",
      }).corsOrigins,
    ).toEqual(["https://console.example.com", "http://localhost:5173"]);
    expect(configOf({ ...DEV, MACP_CORS_ORIGINS: "*" }).corsOrigins).toEqual(["*"]);
    expect(configOf({ ...DEV, MACP_CORS_ORIGINS: "" }).corsOrigins).toEqual([]);
  });

  it("accepts IPv6 literals and port 0", () => {
    expect(configOf({ ...DEV, MACP_BIND_ADDR: "[::1]:0" }).bind).toEqual({ host: "::1", port: 0 });
    expect(parseSocketAddress("[::]:50051")).toEqual({ host: "::", port: 50051 });
  });

  it("puts gRPC-Web and Connect on the next port of the gRPC address unless told otherwise", () => {
    expect(configOf(DEV).httpBind).toEqual({ host: "127.0.0.1", port: 50052 });
    expect(configOf({ ...DEV, MACP_BIND_ADDR: "[::1]:0" }).httpBind).toEqual({
      host: "::1",
      port: 0,
    });
    expect(configOf({ ...DEV, MACP_HTTP_BIND_ADDR: "0.0.0.0:8080" }).httpBind).toEqual({
      host: "0.0.0.0",
      port: 8080,
    });
    expect(configOf({ ...DEV, MACP_HTTP_BIND_ADDR: "off" }).httpBind).toBeUndefined();
  });

  it("refuses an HTTP address that is not a socket address, is the gRPC one, or has no default", () => {
    expect(
      refusalOf({ ...DEV, MACP_HTTP_BIND_ADDR: "localhost:8080" }, "MACP_HTTP_BIND_ADDR"),
    ).toContain("not a literal IP:port");
    expect(
      refusalOf(
        { ...DEV, MACP_BIND_ADDR: "127.0.0.1:7000", MACP_HTTP_BIND_ADDR: "127.0.0.1:7000" },
        "MACP_HTTP_BIND_ADDR",
      ),
    ).toContain("must differ from MACP_BIND_ADDR");
    expect(
      refusalOf({ ...DEV, MACP_BIND_ADDR: "127.0.0.1:65535" }, "MACP_HTTP_BIND_ADDR"),
    ).toContain("port 65535");
  });

  it("turns flags on only for exactly 1", () => {
    for (const value of ["true", "yes", "0", "", "1 "]) {
      expect(loadConfig({ MACP_ALLOW_INSECURE: value }).ok).toBe(false);
      expect(configOf({ ...DEV, MACP_MEMORY_ONLY: value }).storage.kind).toBe("file");
      expect(configOf({ ...DEV, MACP_STRICT_RECOVERY: value }).strictRecovery).toBe(false);
      expect(configOf({ ...DEV, MACP_INSPECTOR: value }).inspector).toBe(false);
    }
    expect(configOf({ ...DEV, MACP_INSPECTOR: "1" }).inspector).toBe(true);
    expect(configOf({ ...DEV, MACP_MEMORY_ONLY: "1" }).storage).toEqual({ kind: "memory" });
    const warned = configOf({ ...DEV, MACP_MEMORY_ONLY: "true", MACP_STRICT_RECOVERY: "yes" });
    expect(warned.warnings.filter((w) => w.includes("counts as off"))).toHaveLength(2);
    expect(
      configOf({ ...DEV, MACP_MEMORY_ONLY: "0" }).warnings.some((w) => w.includes("counts as off")),
    ).toBe(false);
  });

  it("ignores MACP_STORAGE_BACKEND and MACP_DATA_DIR when memory-only", () => {
    const config = configOf({ ...DEV, MACP_MEMORY_ONLY: "1", MACP_STORAGE_BACKEND: "redis" });
    expect(config.storage).toEqual({ kind: "memory" });
    expect(config.warnings.some((w) => w.includes("MACP_STORAGE_BACKEND"))).toBe(true);
  });

  it("serves plaintext with a warning when only half of the TLS pair is set and insecure is allowed", () => {
    const config = configOf({ ...DEV, MACP_TLS_CERT_PATH: cert });
    expect(config.tls).toBeUndefined();
    expect(config.warnings.some((w) => w.includes("MACP_TLS_KEY_PATH is not"))).toBe(true);
  });

  it("refuses a missing TLS file", () => {
    const message = refusalOf(
      { ...DEV, MACP_TLS_CERT_PATH: join(dir, "nope.crt"), MACP_TLS_KEY_PATH: key },
      "MACP_TLS_CERT_PATH",
    );
    expect(message).toContain("file not found");
    expect(
      refusalOf({ ...DEV, MACP_TLS_CERT_PATH: cert, MACP_TLS_KEY_PATH: "" }, "MACP_TLS_KEY_PATH"),
    ).toContain("file not found");
  });

  it("reads RUST_LOG when MACP_LOG_LEVEL is unset", () => {
    expect(configOf({ ...DEV, RUST_LOG: "warn" }).logLevel).toBe("warn");
    expect(configOf({ ...DEV, RUST_LOG: "info,macp_runtime=debug" }).logLevel).toBe("debug");
    expect(configOf({ ...DEV, RUST_LOG: "tower=trace,error" }).logLevel).toBe("error");
    expect(configOf({ ...DEV, RUST_LOG: "off" }).logLevel).toBe("silent");
    expect(configOf({ ...DEV, RUST_LOG: "warn", MACP_LOG_LEVEL: "trace" }).logLevel).toBe("trace");
    const junk = configOf({ ...DEV, RUST_LOG: "loud" });
    expect(junk.logLevel).toBe("info");
    expect(junk.warnings.some((w) => w.startsWith("RUST_LOG"))).toBe(true);
    const bad = configOf({ ...DEV, MACP_LOG_LEVEL: "chatty" });
    expect(bad.logLevel).toBe("info");
    expect(bad.warnings.some((w) => w.startsWith("MACP_LOG_LEVEL"))).toBe(true);
  });

  it("falls back with a warning where the reference falls back silently", () => {
    const cases: [string, string, keyof ReturnType<typeof configOf>, number][] = [
      ["MACP_CLEANUP_INTERVAL_SECS", "soon", "cleanupIntervalMs", 60_000],
      ["MACP_CLEANUP_INTERVAL_SECS", "0", "cleanupIntervalMs", 60_000],
      ["MACP_SESSION_RETENTION_SECS", "-1", "sessionRetentionMs", 3_600_000],
      ["MACP_SESSION_DISK_RETENTION_SECS", "1.5", "sessionDiskRetentionMs", 0],
      ["MACP_CONCURRENCY_LIMIT_PER_CONNECTION", "0", "concurrencyLimitPerConnection", 64],
      ["MACP_MAX_CONCURRENT_STREAMS", "lots", "maxConcurrentStreams", 128],
      ["MACP_REQUEST_TIMEOUT_SECS", "0", "requestTimeoutMs", 30_000],
      ["MACP_SHUTDOWN_DRAIN_SECS", "x", "shutdownDrainMs", 10_000],
    ];
    for (const [variable, value, field, expected] of cases) {
      const config = configOf({ ...DEV, [variable]: value });
      expect(config[field], `${variable}=${value}`).toBe(expected);
      expect(
        config.warnings.some((w) => w.startsWith(variable)),
        `${variable}=${value}`,
      ).toBe(true);
    }
  });

  it("turns metrics off with a warning for an unusable MACP_METRICS_ADDR", () => {
    const config = configOf({ ...DEV, MACP_METRICS_ADDR: "nowhere" });
    expect(config.metrics).toBeUndefined();
    expect(config.warnings.some((w) => w.startsWith("MACP_METRICS_ADDR"))).toBe(true);
    expect(configOf({ ...DEV, MACP_METRICS_ADDR: "localhost:9464" }).metrics).toEqual({
      host: "localhost",
      port: 9464,
    });
  });

  it("warns about variables it cannot honour", () => {
    const config = configOf({
      ...DEV,
      MACP_ROCKSDB_PATH: "/x",
      MACP_REDIS_URL: "redis://x",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://x",
    });
    for (const variable of ["MACP_ROCKSDB_PATH", "MACP_REDIS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"]) {
      expect(config.warnings.some((w) => w.startsWith(variable))).toBe(true);
    }
  });
});

describe("loadConfig refusals", () => {
  it("refuses to start without TLS unless MACP_ALLOW_INSECURE=1", () => {
    const message = refusalOf(
      { MACP_AUTH_TOKENS_JSON: JSON.stringify([{ token: "t1", sender: "a" }]) },
      "MACP_TLS_CERT_PATH",
    );
    expect(message).toContain("TLS is required unless MACP_ALLOW_INSECURE=1 is set");
  });

  it("refuses to start without authentication unless MACP_ALLOW_INSECURE=1", () => {
    const errors = refusals(loadConfig({}));
    const auth = errors.find((error) => error.message.includes("no authentication configured"));
    expect(auth?.variable).toBe("MACP_ALLOW_INSECURE");
  });

  it("refuses a bind address that is not a literal IP:port", () => {
    for (const value of [
      "localhost:50051",
      "50051",
      "127.0.0.1",
      "127.0.0.1:65536",
      "::1:50051",
      "127.0.0.1:-1",
      "",
    ]) {
      expect(refusalOf({ ...DEV, MACP_BIND_ADDR: value }, "MACP_BIND_ADDR")).toContain(
        "not a literal IP:port",
      );
    }
  });

  it("refuses payload and rate limits that are not positive integers", () => {
    for (const variable of [
      "MACP_MAX_PAYLOAD_BYTES",
      "MACP_SESSION_START_LIMIT_PER_MINUTE",
      "MACP_MESSAGE_LIMIT_PER_MINUTE",
    ]) {
      for (const value of ["0", "-5", "1e3", "ten", "", "99999999999999999999"]) {
        expect(refusalOf({ ...DEV, [variable]: value }, variable)).toContain(
          "expected a positive integer",
        );
      }
    }
  });

  it("refuses MACP_CORS_ORIGINS entries that are not origins", () => {
    for (const value of ["console.example.com", "https://console.example.com/", "ftp://x.test"]) {
      expect(refusalOf({ ...DEV, MACP_CORS_ORIGINS: value }, "MACP_CORS_ORIGINS")).toContain(
        JSON.stringify(value),
      );
    }
  });

  it("refuses a checkpoint interval that is not a non-negative integer", () => {
    expect(configOf({ ...DEV, MACP_CHECKPOINT_INTERVAL: "0" }).checkpointInterval).toBe(0);
    expect(
      refusalOf({ ...DEV, MACP_CHECKPOINT_INTERVAL: "-1" }, "MACP_CHECKPOINT_INTERVAL"),
    ).toContain("non-negative integer");
  });

  it("refuses storage backends it does not have", () => {
    expect(
      refusalOf({ ...DEV, MACP_STORAGE_BACKEND: "rocksdb" }, "MACP_STORAGE_BACKEND"),
    ).toContain("rocksdb backend is not available");
    expect(refusalOf({ ...DEV, MACP_STORAGE_BACKEND: "redis" }, "MACP_STORAGE_BACKEND")).toContain(
      "redis backend is not available",
    );
    expect(refusalOf({ ...DEV, MACP_STORAGE_BACKEND: "s3" }, "MACP_STORAGE_BACKEND")).toContain(
      "unknown storage backend",
    );
  });

  it("refuses empty directory variables", () => {
    expect(refusalOf({ ...DEV, MACP_DATA_DIR: "" }, "MACP_DATA_DIR")).toContain("directory");
    expect(refusalOf({ ...DEV, MACP_POLICIES_DIR: "" }, "MACP_POLICIES_DIR")).toContain(
      "directory",
    );
  });

  it("passes on the refusals of @macp/auth, each naming its variable", () => {
    expect(
      refusalOf({ ...DEV, MACP_AUTH_TOKENS_JSON: "{not json" }, "MACP_AUTH_TOKENS_JSON"),
    ).toMatch(/^MACP_AUTH_TOKENS_JSON: /);
    expect(
      refusalOf(
        { ...DEV, MACP_AUTH_TOKENS_FILE: "/nonexistent/tokens.json" },
        "MACP_AUTH_TOKENS_FILE",
      ),
    ).toContain("cannot read");
  });

  it("reports every problem at once", () => {
    const errors = refusals(
      loadConfig({
        MACP_BIND_ADDR: "nowhere",
        MACP_MAX_PAYLOAD_BYTES: "0",
        MACP_CHECKPOINT_INTERVAL: "x",
      }),
    );
    const variables = errors.map((error) => error.variable);
    expect(variables).toEqual(
      expect.arrayContaining([
        "MACP_BIND_ADDR",
        "MACP_MAX_PAYLOAD_BYTES",
        "MACP_CHECKPOINT_INTERVAL",
        "MACP_TLS_CERT_PATH",
        "MACP_ALLOW_INSECURE",
      ]),
    );
    for (const error of errors) expect(error.message.startsWith(`${error.variable}: `)).toBe(true);
  });
});
