import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));
const packages = readdirSync(new URL("./packages", import.meta.url));

// Tests run against the TypeScript sources of sibling packages, so no build is
// needed between an edit and a test run.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^@macp\/connect\/node$/, replacement: `${root}packages/connect/src/node/index.ts` },
      { find: /^@macp\/core\/testing$/, replacement: `${root}packages/core/src/testing/index.ts` },
      {
        find: /^@macp\/store-postgres\/testing$/,
        replacement: `${root}packages/store-postgres/src/testing/index.ts`,
      },
      { find: /^@macp\/core\/wire$/, replacement: `${root}packages/core/src/wire/index.ts` },
      { find: /^@macp\/([a-z0-9-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
    ],
  },
  test: {
    projects: packages.map((name) => ({
      extends: true,
      test: {
        name,
        root: `${root}packages/${name}`,
        include: ["src/**/*.test.ts", "test/**/*.test.ts"],
        testTimeout: 30_000,
        hookTimeout: 30_000,
      },
    })),
  },
});
