import { readFileSync } from "node:fs";

// Read at run time rather than imported: package.json lies outside rootDir,
// and from both src/ (tests) and dist/ it is one directory up.
const manifest: unknown = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
);

/** The @macp/runtime package version, reported in Initialize and the start-up log line. */
export const RUNTIME_VERSION: string =
  typeof manifest === "object" &&
  manifest !== null &&
  "version" in manifest &&
  typeof manifest.version === "string"
    ? manifest.version
    : "0.0.0";
