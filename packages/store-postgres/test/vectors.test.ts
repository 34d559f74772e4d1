import { randomUUID } from "node:crypto";
import { loadVectors, runVector } from "@macp/conformance";
import { createDevIdentity, createRuntime, type MacpRuntime } from "@macp/core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore, type PostgresStore } from "../src/index.js";
import { startThrowawayPostgres, type ThrowawayPostgres } from "../src/testing/index.js";
import { clusterDriver } from "./cluster-driver.js";

const vectors = loadVectors();
let db: ThrowawayPostgres;
const opened: { runtime: MacpRuntime; store: PostgresStore }[] = [];
let now = 1_750_000_000_000;
const clock = { now: () => now };
const observer = { ...createDevIdentity("agent://observer"), isObserver: true };

let url: string;

async function instance(): Promise<MacpRuntime> {
  const store = await createPostgresStore({ url });
  const runtime = createRuntime({ clock, store });
  await runtime.recover();
  opened.push({ runtime, store });
  return runtime;
}

beforeAll(async () => {
  db = await startThrowawayPostgres();
});

afterEach(async () => {
  for (const { runtime } of opened.splice(0)) await runtime.close();
});

afterAll(async () => {
  await db?.stop();
});

describe("conformance vectors on PostgreSQL", () => {
  it("ships all 17 vectors", () => {
    expect(vectors).toHaveLength(17);
  });

  describe("one instance, then a fresh instance rebuilds each session identically", () => {
    beforeAll(async () => {
      url = await db.createDatabase("one_instance");
    });

    for (const vector of vectors) {
      it(vector.name, async () => {
        const runtime = await instance();
        const sessionId = randomUUID();
        const steps = await runVector(
          vector,
          clusterDriver([runtime], () => 0),
          {
            sessionId,
            now: () => now++,
          },
        );
        expect(steps).toHaveLength(vector.messages.length);
        const fresh = await instance();
        expect(fresh.inspectSession(sessionId)).toEqual(runtime.inspectSession(sessionId));
      });
    }
  });

  describe("three instances, every call to a random one", () => {
    let cluster: MacpRuntime[] = [];
    beforeAll(async () => {
      url = await db.createDatabase("three_instances");
      for (let i = 0; i < 3; i++) {
        const store = await createPostgresStore({ url });
        const runtime = createRuntime({ clock, store });
        await runtime.recover();
        cluster.push(runtime);
      }
    });
    afterAll(async () => {
      for (const runtime of cluster) await runtime.close();
      cluster = [];
    });

    for (const vector of vectors) {
      it(vector.name, async () => {
        const sessionId = randomUUID();
        const steps = await runVector(
          vector,
          clusterDriver(cluster, () => Math.floor(Math.random() * cluster.length)),
          { sessionId, now: () => now++ },
        );
        expect(steps).toHaveLength(vector.messages.length);
        for (const runtime of cluster) {
          // Brings each replica up to the log.
          const state = await runtime.getSession(sessionId, observer);
          expect(state.isOk()).toBe(true);
        }
        const snapshots = cluster.map((runtime) => runtime.inspectSession(sessionId));
        expect(snapshots[1]).toEqual(snapshots[0]);
        expect(snapshots[2]).toEqual(snapshots[0]);
      });
    }
  });
});
