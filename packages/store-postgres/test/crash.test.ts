import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { type Envelope, EnvelopeSchema, SessionStartPayloadSchema } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresStore } from "../src/index.js";
import { startThrowawayPostgres, type ThrowawayPostgres } from "../src/testing/index.js";

// Instances SIGKILLed under load: three runtime processes share one database
// while client loops send to random instances; instances are killed and
// restarted throughout. A call the killed instance never answered is retried on
// another instance until it is answered. At the end every acknowledged message
// is in its session's history exactly once, and nothing else is.

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = resolve(packageDir, "../..");
const childScript = join(packageDir, "test", "fixtures", "instance-child.mjs");
const MODE = "ext.crash.v1";
const PARTICIPANTS = ["agent://a", "agent://b", "agent://c"];
const INSTANCES = 3;
const SESSIONS = 4;
const LOOPS = 6;
const KILLS = 6;

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly duplicate: boolean;
  readonly code: string;
}

/** One runtime process, spoken to over IPC. An unanswered call resolves `undefined` when it dies. */
class Instance {
  private readonly pending = new Map<number, (reply: Reply | undefined) => void>();
  private nextId = 0;
  alive = true;

  private constructor(private readonly child: ChildProcess) {
    child.on("message", (message: Reply) => {
      this.pending.get(message.id)?.(message);
      this.pending.delete(message.id);
    });
    child.on("exit", () => {
      this.alive = false;
      for (const answer of this.pending.values()) answer(undefined);
      this.pending.clear();
    });
  }

  static async start(url: string): Promise<Instance> {
    const child = fork(childScript, [url], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const instance = new Instance(child);
    started.push(instance);
    await new Promise<void>((ready, failed) => {
      child.once("message", () => ready());
      child.once("exit", (code) => failed(new Error(`instance exited (${code}) before ready`)));
    });
    return instance;
  }

  call(message: Record<string, unknown>): Promise<Reply | undefined> {
    if (!this.alive) return Promise.resolve(undefined);
    const id = ++this.nextId;
    return new Promise((answer) => {
      this.pending.set(id, answer);
      try {
        this.child.send({ ...message, id }, (error) => {
          if (error) {
            this.pending.delete(id);
            answer(undefined);
          }
        });
      } catch {
        this.pending.delete(id);
        answer(undefined);
      }
    });
  }

  send(envelope: Envelope): Promise<Reply | undefined> {
    // IPC speaks JSON: bytes travel as base64.
    const bytes = toBinary(EnvelopeSchema, envelope);
    return this.call({ kind: "send", envelope: Buffer.from(bytes).toString("base64") });
  }

  kill(): Promise<void> {
    if (!this.alive) return Promise.resolve();
    const exited = new Promise<void>((done) => this.child.once("exit", () => done()));
    this.child.kill("SIGKILL");
    return exited;
  }
}

let db: ThrowawayPostgres;
/** Every instance started, so a failing test still leaves no process behind. */
const started: Instance[] = [];

beforeAll(async () => {
  // The instances run the built packages, not the sources vitest maps @macp/* to.
  try {
    execFileSync(
      process.execPath,
      [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-b", "packages/store-postgres"],
      { cwd: repoRoot, stdio: "pipe", timeout: 180_000 },
    );
  } catch (error) {
    const built = ["core", "proto", "store-postgres"].every((name) =>
      existsSync(join(repoRoot, "packages", name, "dist", "index.js")),
    );
    if (!built) throw error;
  }
  db = await startThrowawayPostgres();
}, 240_000);

afterAll(async () => {
  await Promise.all(started.map((instance) => instance.kill()));
  await db?.stop();
});

describe("instances SIGKILLed under load", () => {
  it("loses no acknowledged message and never stores one twice", async () => {
    const url = await db.createDatabase("crash");
    const instances: Instance[] = [];
    for (let i = 0; i < INSTANCES; i++) instances.push(await Instance.start(url));
    const registered = await instances[0]?.call({
      kind: "register",
      descriptor: {
        mode: MODE,
        modeVersion: "1.0.0",
        messageTypes: ["Message", "Commitment"],
        terminalMessageTypes: ["Commitment"],
      },
    });
    expect(registered?.ok).toBe(true);

    let counter = 0;
    const envelope = (
      sessionId: string,
      messageType: string,
      sender: string,
      payload: Uint8Array,
    ) =>
      create(EnvelopeSchema, {
        macpVersion: "1.0",
        mode: MODE,
        messageType,
        messageId: `m${++counter}`,
        sessionId,
        sender,
        timestampUnixMs: BigInt(Date.now()),
        payload,
      });
    const live = () => instances.filter((instance) => instance.alive);
    /** Sends until some instance answers; only refusals other than INTERNAL_ERROR are final. */
    const deliver = async (message: Envelope): Promise<Reply> => {
      for (;;) {
        const candidates = live();
        const target = candidates[Math.floor(Math.random() * candidates.length)];
        const reply = target === undefined ? undefined : await target.send(message);
        if (reply !== undefined && (reply.ok || reply.code !== "INTERNAL_ERROR")) return reply;
        await new Promise((retry) => setTimeout(retry, 20));
      }
    };

    const sessionIds = Array.from({ length: SESSIONS }, (_, i) =>
      `crash-session-${i}`.padEnd(24, "0"),
    );
    for (const sessionId of sessionIds) {
      const start = envelope(
        sessionId,
        "SessionStart",
        "agent://a",
        toBinary(
          SessionStartPayloadSchema,
          create(SessionStartPayloadSchema, {
            participants: PARTICIPANTS,
            ttlMs: 600_000n,
            modeVersion: "1.0.0",
          }),
        ),
      );
      expect((await deliver(start)).ok).toBe(true);
    }

    const acked = new Map<string, string[]>(sessionIds.map((id) => [id, []]));
    let stopping = false;
    const loops = Array.from({ length: LOOPS }, async (_, loop) => {
      for (let k = 0; !stopping; k++) {
        const sessionId = sessionIds[(loop + k) % SESSIONS] as string;
        const sender = PARTICIPANTS[loop % PARTICIPANTS.length] as string;
        const message = envelope(sessionId, "Message", sender, new Uint8Array([loop, k & 255]));
        const reply = await deliver(message);
        expect(reply.ok, reply.code).toBe(true);
        acked.get(sessionId)?.push(message.messageId);
      }
    });
    for (let kill = 0; kill < KILLS; kill++) {
      await new Promise((pause) => setTimeout(pause, 400));
      const victim = Math.floor(Math.random() * instances.length);
      await instances[victim]?.kill();
      instances[victim] = await Instance.start(url);
    }
    await new Promise((pause) => setTimeout(pause, 300));
    stopping = true;
    await Promise.all(loops);
    await Promise.all(instances.map((instance) => instance.kill()));

    const store = await createPostgresStore({ url });
    try {
      let total = 0;
      for (const sessionId of sessionIds) {
        const records = (await store.read(sessionId)) ?? [];
        const ids = records.flatMap((r) => (r.kind === "incoming" ? [r.envelope.messageId] : []));
        expect(new Set(ids).size).toBe(ids.length);
        const messages = ids.slice(1);
        expect([...messages].sort()).toEqual([...(acked.get(sessionId) ?? [])].sort());
        total += messages.length;
      }
      expect(total).toBeGreaterThan(KILLS);
    } finally {
      await store.close();
    }
  }, 180_000);
});
