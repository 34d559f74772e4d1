// Adds lock entries for platform-specific optional packages that `npm install`
// could not resolve (registry mirrors often carry only some platforms' builds).
// `npm ci` insists every optional dependency is in the lock; with its os/cpu/libc
// recorded, npm skips it on other platforms without fetching it.
// Run after `npm install`: node scripts/complete-lockfile.mjs
import { readFileSync, writeFileSync } from "node:fs";

const OS = [
  "android",
  "darwin",
  "linux",
  "win32",
  "freebsd",
  "openbsd",
  "netbsd",
  "sunos",
  "aix",
  "openharmony",
];
const CPU = {
  arm64: "arm64",
  x64: "x64",
  ia32: "ia32",
  arm: "arm",
  armv7: "arm",
  "arm-gnueabihf": "arm",
  "arm-musleabihf": "arm",
  "arm-eabi": "arm",
  loong64: "loong64",
  ppc64: "ppc64",
  riscv64: "riscv64",
  s390x: "s390x",
  mips64el: "mips64el",
};

function platformOf(name) {
  const tail = name.split("/").pop();
  const parts = tail.split("-");
  const os = parts.find((part) => OS.includes(part));
  if (!os) return undefined;
  const rest = tail.slice(tail.indexOf(os) + os.length + 1);
  const cpuKey = Object.keys(CPU)
    .sort((a, b) => b.length - a.length)
    .find((key) => rest === key || rest.startsWith(`${key}-`) || rest.startsWith(`${key}`));
  const entry = { os: [os === "openharmony" ? "openharmony" : os] };
  if (cpuKey) entry.cpu = [CPU[cpuKey]];
  if (/musl/.test(rest)) entry.libc = ["musl"];
  else if (os === "linux" && /gnu/.test(rest)) entry.libc = ["glibc"];
  return entry;
}

const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
let added = 0;
for (const [path, pkg] of Object.entries(lock.packages)) {
  for (const [name, spec] of Object.entries(pkg.optionalDependencies ?? {})) {
    const nested = `${path ? `${path}/` : ""}node_modules/${name}`;
    if (lock.packages[nested] || lock.packages[`node_modules/${name}`]) continue;
    const platform = platformOf(name);
    if (!platform || !/^\d+\.\d+\.\d+/.test(spec)) continue;
    lock.packages[`node_modules/${name}`] = {
      version: spec,
      ...(platform.cpu ? { cpu: platform.cpu } : {}),
      ...(pkg.dev ? { dev: true } : {}),
      ...(platform.libc ? { libc: platform.libc } : {}),
      optional: true,
      os: platform.os,
    };
    added++;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)),
);
writeFileSync("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
console.log(`added ${added} platform entries`);
