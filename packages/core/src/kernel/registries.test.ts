// Registry changes on runtimes sharing one store: written to the shared log
// first, applied by every instance (the writer included) in the log's order.

import type { PolicyDescriptor } from "@macp/proto";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../errors.js";
import { createDevIdentity } from "../identity.js";
import { createRuntime } from "../runtime.js";
import type { MacpRuntime } from "../runtime-api.js";
import { extModeDescriptor, take } from "../testing/fixtures.js";
import { SharedMemoryLog } from "../testing/shared-memory-log.js";
import { SimulatedClock } from "../testing/simulated-clock.js";

const admin = createDevIdentity("agent://admin");

/** The answer to the latest registry mutation (durable and applied, or the write's error). */
function committed(
  runtime: MacpRuntime,
): ReturnType<NonNullable<MacpRuntime["registryCommitted"]>> {
  const answer = runtime.registryCommitted?.();
  if (answer === undefined) throw new Error("this runtime does not report registry writes");
  return answer;
}

function policy(description: string): PolicyDescriptor {
  return {
    $typeName: "macp.v1.PolicyDescriptor",
    policyId: "policy.test.shared",
    mode: "*",
    description,
    rules: "{}",
    schemaVersion: 1,
    registeredAtUnixMs: 0n,
  };
}

async function instances(log: SharedMemoryLog, count: number) {
  const clock = new SimulatedClock();
  const runtimes = Array.from({ length: count }, () => createRuntime({ clock, store: log }));
  for (const runtime of runtimes) await runtime.recover();
  return runtimes;
}

function described(runtime: MacpRuntime): string | undefined {
  const found = runtime.getPolicy("policy.test.shared", admin);
  return found.isOk() ? found.value.description : undefined;
}

describe("registry changes with a shared store", () => {
  it("leaves the registry unchanged and answers INTERNAL_ERROR when the shared write fails", async () => {
    const log = new SharedMemoryLog();
    const [a] = await instances(log, 1);
    log.failRegistryWrites = true;
    expect(a!.registerPolicy(policy("lost"), admin)._unsafeUnwrap().ok).toBe(true);
    const written = await committed(a!);
    expect(written._unsafeUnwrapErr().code).toBe(ErrorCode.INTERNAL_ERROR);
    expect(described(a!)).toBeUndefined();
    expect(log.registry).toEqual([]);

    const mode = a!.registerExtMode(extModeDescriptor("ext.lost.v1"), admin);
    expect(mode._unsafeUnwrap().ok).toBe(true);
    expect((await committed(a!))._unsafeUnwrapErr().code).toBe(ErrorCode.INTERNAL_ERROR);
    expect(a!.listExtModes().map((d) => d.mode)).not.toContain("ext.lost.v1");
  });

  it("answers a refused change with its refusal, not with an earlier change's failed write", async () => {
    const log = new SharedMemoryLog();
    const [a] = await instances(log, 1);
    log.failRegistryWrites = true;
    a!.registerPolicy(policy("lost"), admin)._unsafeUnwrap();
    const refused = a!.unregisterPolicy("policy.test.unknown", admin)._unsafeUnwrap();
    expect(refused.ok).toBe(false);
    expect((await committed(a!)).isOk()).toBe(true);
  });

  it("applies a change on the writer only once it is in the shared log", async () => {
    const log = new SharedMemoryLog();
    const [a] = await instances(log, 1);
    a!.registerPolicy(policy("first"), admin)._unsafeUnwrap();
    expect(described(a!)).toBeUndefined();
    (await committed(a!))._unsafeUnwrap();
    expect(log.registry).toHaveLength(1);
    expect(described(a!)).toBe("first");
  });

  it("shows concurrent changes on two instances in the log's one order", async () => {
    const log = new SharedMemoryLog();
    const [a, b] = await instances(log, 2);
    const watches = [a!, b!].map((runtime) => take(runtime.watchPolicies(), 3));
    // Both are checked against a registry without the policy; the log decides which comes last.
    a!.registerPolicy(policy("from a"), admin)._unsafeUnwrap();
    const fromA = committed(a!);
    b!.registerPolicy(policy("from b"), admin)._unsafeUnwrap();
    const fromB = committed(b!);
    (await fromA)._unsafeUnwrap();
    (await fromB)._unsafeUnwrap();
    await Promise.all([a!, b!].map((runtime) => committed(runtime)));
    await log.syncRegistry();
    const seen = await Promise.all(watches);
    const orders = seen.map((snapshots) =>
      snapshots.map(
        (s) => s.descriptors.find((d) => d.policyId === "policy.test.shared")?.description,
      ),
    );
    expect(orders[0]).toEqual([undefined, "from a", "from b"]);
    expect(orders[1]).toEqual(orders[0]);
    expect([described(a!), described(b!)]).toEqual(["from b", "from b"]);
  });

  it("loads exactly the acknowledged changes on restart", async () => {
    const log = new SharedMemoryLog();
    const [a] = await instances(log, 1);
    a!.registerPolicy(policy("kept"), admin)._unsafeUnwrap();
    (await committed(a!))._unsafeUnwrap();
    log.failRegistryWrites = true;
    a!.unregisterPolicy("policy.test.shared", admin)._unsafeUnwrap();
    expect((await committed(a!)).isErr()).toBe(true);
    expect(described(a!)).toBe("kept");
    await a!.close();
    log.failRegistryWrites = false;
    const [restarted] = await instances(log, 1);
    expect(described(restarted!)).toBe("kept");
  });
});
