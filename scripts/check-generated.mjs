// Fails when packages/proto/src/gen is not what `buf generate` makes from proto/.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

const committed = "packages/proto/src/gen";
const scratch = mkdtempSync(join(tmpdir(), "macp-gen-"));
try {
  execFileSync("buf", ["generate", "-o", scratch], { stdio: "inherit" });
  const fresh = join(scratch, committed);
  const list = (root) => {
    const out = [];
    const walk = (dir) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else out.push(relative(root, path));
      }
    };
    walk(root);
    return out.sort();
  };
  const a = list(committed);
  const b = list(fresh);
  const stale = [];
  for (const f of new Set([...a, ...b])) {
    const x = a.includes(f) ? readFileSync(join(committed, f), "utf8") : null;
    const y = b.includes(f) ? readFileSync(join(fresh, f), "utf8") : null;
    if (x !== y) stale.push(f);
  }
  if (stale.length > 0) {
    console.error(`generated code is stale; run \`npm run generate\`:\n  ${stale.join("\n  ")}`);
    process.exit(1);
  }
  console.log(`generated code is fresh (${a.length} files)`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
