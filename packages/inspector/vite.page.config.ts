// Builds the inspector page into dist/ui: one bundle, no CDN, works offline.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here("./ui"),
  // Relative asset URLs, so the page works under any base path (/inspector/).
  base: "./",
  logLevel: "warn",
  resolve: {
    // The page bundles the TypeScript sources; no build of @macp/proto needed first.
    alias: [{ find: /^@macp\/proto$/, replacement: here("../proto/src/index.ts") }],
  },
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: here("./dist/ui"),
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 1024,
  },
});
