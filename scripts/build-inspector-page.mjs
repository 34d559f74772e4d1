// `npm start`'s page build: runs `npm run build:inspector` unless the built
// page is newer than everything it is bundled from, so MACP_INSPECTOR=1 works
// on a fresh clone and a plain restart does not rebuild (or empty) dist/ui
// under a running server.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const built = "packages/inspector/dist/ui/index.html";
const sources = [
  "packages/inspector/ui",
  "packages/proto/src",
  "packages/inspector/vite.page.config.ts",
];

/** The newest modification time under `path`, in ms. */
function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const stale = !existsSync(built) || Math.max(...sources.map(newest)) > statSync(built).mtimeMs;
if (stale) {
  execFileSync(
    process.platform === "win32" ? "npm.cmd" : "npm",
    ["run", "--silent", "build:inspector"],
    {
      stdio: "inherit",
    },
  );
}
