// MACP_POLICIES_DIR: governance policies preloaded from disk. Any problem is
// fatal at start-up, because a runtime silently missing a policy would accept
// sessions it was meant to govern.

import type { Dirent } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { builtInPolicyRules, loadPolicyFile, type PolicyDefinition } from "@macp/core";

/** Thrown for anything wrong in the directory; the message starts with `MACP_POLICIES_DIR:`. */
export class PoliciesDirError extends Error {
  readonly variable = "MACP_POLICIES_DIR";
  constructor(detail: string) {
    super(`MACP_POLICIES_DIR: ${detail}`);
    this.name = "PoliciesDirError";
  }
}

/**
 * Reads every `*.json` file directly in `directory` (not in subdirectories),
 * in byte order of their names, and validates each as one policy definition.
 * Duplicate policy ids across files are refused here, so the error can name
 * both files.
 */
export async function loadPoliciesDir(directory: string): Promise<PolicyDefinition[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch (error) {
    throw new PoliciesDirError(
      `cannot read directory ${JSON.stringify(directory)}: ${describe(error)}`,
    );
  }
  const names = entries
    .filter((entry) => entry.name.endsWith(".json") && !entry.isDirectory())
    .map((entry) => entry.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const policies: PolicyDefinition[] = [];
  const seen = new Map<string, string>();
  for (const name of names) {
    const path = join(directory, name);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      throw new PoliciesDirError(`cannot read ${path}: ${describe(error)}`);
    }
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch (error) {
      throw new PoliciesDirError(`${path} is not valid JSON: ${describe(error)}`);
    }
    const loaded = loadPolicyFile(document, builtInPolicyRules);
    if (loaded.isErr()) {
      throw new PoliciesDirError(`${path}: ${loaded.error.message}`);
    }
    const policy = loaded.value;
    const earlier = seen.get(policy.policyId);
    if (earlier !== undefined) {
      throw new PoliciesDirError(
        `${path}: policy id ${JSON.stringify(policy.policyId)} is already defined in ${earlier}`,
      );
    }
    seen.set(policy.policyId, path);
    policies.push(policy);
  }
  return policies;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
