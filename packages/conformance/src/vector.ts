import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One message of a conformance vector. */
export interface VectorMessage {
  readonly sender: string;
  readonly message_type: string;
  /** Fully-qualified protobuf message name of the payload. */
  readonly payload_type: string;
  readonly payload: Record<string, unknown>;
  readonly expect: "accept" | "reject";
  readonly expected_error_code?: string;
}

/** A conformance vector (schema: vector.schema.json, the protocol's fixture schema). */
export interface ConformanceVector {
  /** File name without extension. */
  readonly name: string;
  readonly mode: string;
  readonly initiator: string;
  readonly participants: readonly string[];
  readonly mode_version: string;
  readonly configuration_version: string;
  readonly policy_version?: string;
  readonly ttl_ms: number;
  readonly messages: readonly VectorMessage[];
  readonly expected_final_state: "Open" | "Suspended" | "Resolved" | "Expired" | "Cancelled";
  readonly expected_resolution?: Record<string, unknown>;
  readonly expected_mode_state?: Record<string, unknown>;
  readonly expect_resolution_present?: boolean;
  readonly verify_replay_equivalence?: boolean;
  readonly policy?: {
    readonly policy_id: string;
    readonly mode: string;
    readonly description: string;
    readonly rules: Record<string, unknown>;
    readonly schema_version: number;
  };
}

const vectorsDirectory = fileURLToPath(new URL("../vectors/", import.meta.url));

/** Every vector shipped with this package, sorted by name. */
export function loadVectors(): ConformanceVector[] {
  return readdirSync(vectorsDirectory)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const json = JSON.parse(readFileSync(`${vectorsDirectory}${file}`, "utf8")) as Omit<
        ConformanceVector,
        "name"
      >;
      return { ...json, name: file.replace(/\.json$/, "") };
    });
}

/**
 * Subset match (modes.md §0.8): objects must contain the expected keys with
 * matching values, arrays must be at least as long and match element-wise as a
 * prefix. Returns the path of the first mismatch, or undefined.
 */
export function subsetMismatch(actual: unknown, expected: unknown, path = "$"): string | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length < expected.length) return path;
    for (let i = 0; i < expected.length; i++) {
      const mismatch = subsetMismatch(actual[i], expected[i], `${path}[${i}]`);
      if (mismatch) return mismatch;
    }
    return undefined;
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) return path;
    for (const [key, value] of Object.entries(expected)) {
      const mismatch = subsetMismatch(
        (actual as Record<string, unknown>)[key],
        value,
        `${path}.${key}`,
      );
      if (mismatch) return mismatch;
    }
    return undefined;
  }
  return Object.is(actual, expected) || actual === expected ? undefined : path;
}
