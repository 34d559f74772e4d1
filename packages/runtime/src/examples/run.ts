#!/usr/bin/env node
// `npm run example -- <name>`: runs one example client (or `all` of them)
// against MACP_ENDPOINT and exits non-zero if any step went differently.

import { EXAMPLES } from "./catalog.js";
import { resolveEndpoint } from "./support.js";

function usage(): string {
  return `usage: run.js <${[...Object.keys(EXAMPLES), "all"].join("|")}>
Runs an example client against MACP_ENDPOINT (default http://127.0.0.1:50051).
The runtime must use dev-mode auth: MACP_ALLOW_INSECURE=1 with no MACP_AUTH_* set.`;
}

async function main(argv: readonly string[]): Promise<number> {
  const name = argv[0];
  if (name === undefined || name === "-h" || name === "--help") {
    console.error(usage());
    return 2;
  }
  const names = name === "all" ? Object.keys(EXAMPLES) : [name];
  const endpoint = resolveEndpoint(undefined);
  for (const current of names) {
    const example = EXAMPLES[current];
    if (example === undefined) {
      console.error(`unknown example '${current}'\n${usage()}`);
      return 2;
    }
    console.log(`== ${current} (${endpoint})`);
    try {
      await example({ endpoint });
    } catch (error) {
      console.error(
        `${current}: FAILED: ${error instanceof Error ? error.message : String(error)}`,
      );
      return 1;
    }
    console.log(`== ${current}: ok`);
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
