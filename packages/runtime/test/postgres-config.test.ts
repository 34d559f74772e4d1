import { describe, expect, it } from "vitest";
import { type Environment, loadConfig } from "../src/config.js";

const DEV: Environment = { MACP_ALLOW_INSECURE: "1" };

describe("MACP_STORAGE_BACKEND=postgres", () => {
  it("reads MACP_POSTGRES_URL and ignores MACP_DATA_DIR", () => {
    const result = loadConfig({
      ...DEV,
      MACP_STORAGE_BACKEND: "postgres",
      MACP_POSTGRES_URL: "postgres://macp:secret@db.internal:5432/macp",
      MACP_DATA_DIR: "/var/lib/macp",
    });
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.config.storage).toEqual({
      kind: "postgres",
      url: "postgres://macp:secret@db.internal:5432/macp",
    });
    expect(result.config.warnings.some((w) => w.startsWith("MACP_DATA_DIR is ignored"))).toBe(true);
  });

  it("refuses a missing or non-libpq MACP_POSTGRES_URL", () => {
    for (const url of [undefined, "", "mysql://db/macp"]) {
      const result = loadConfig({
        ...DEV,
        MACP_STORAGE_BACKEND: "postgres",
        ...(url === undefined ? {} : { MACP_POSTGRES_URL: url }),
      });
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect(result.errors.map((e) => e.variable)).toContain("MACP_POSTGRES_URL");
    }
  });

  it("allows MACP_WORKERS above 1 only on the shared backend", () => {
    const shared = loadConfig({
      ...DEV,
      MACP_STORAGE_BACKEND: "postgres",
      MACP_POSTGRES_URL: "postgres://db/macp",
      MACP_WORKERS: "4",
    });
    expect(shared.ok && shared.config.workers).toBe(4);
    const file = loadConfig({ ...DEV, MACP_WORKERS: "2" });
    expect(file.ok).toBe(false);
    if (!file.ok) expect(file.errors.map((e) => e.variable)).toEqual(["MACP_WORKERS"]);
    const defaults = loadConfig(DEV);
    expect(defaults.ok && defaults.config.workers).toBe(1);
  });
});
