import { type ChildProcess, execFileSync, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { toBinary } from "@bufbuild/protobuf";
import { createRuntime, type RuntimeLogger } from "@macp/core";
import { proposalEnvelope, startEnvelope } from "@macp/core/testing";
import { type Envelope, EnvelopeSchema } from "@macp/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createFileStore } from "../src/index.js";
import { canonical } from "./fixtures/canonical.mjs";

// Crash safety end to end: a runtime on a file store in a child process serves
// envelopes from several concurrent client loops and is SIGKILLed at random
// points. After every kill the log must hold every acknowledged message exactly
// once, retries of unacknowledged messages must never add a second copy, and a
// restarted runtime must rebuild exactly the state the log replays to. Kills land
// while records are only in the journal, during checkpoints, and during the
// journal replay of a runtime that is starting.

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const repoRoot = resolve(packageDir, "../..");
const childScript = join(packageDir, "test", "fixtures", "crash-child.mjs");
const CYCLES = 24;
const LOOPS = 8;
const TIME_BUDGET_MS = 45_000;
const LIMITS = { sessionStartsPerMinute: 1_000_000, messagesPerMinute: 1_000_000 };
const SMALL_JOURNAL = 8192;
const quiet: RuntimeLogger = { info() {}, warn() {}, error() {} };

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly duplicate: boolean;
  readonly code: string;
  readonly snapshots?: string[];
}

interface Ready {
  readonly kind: "ready";
  readonly report: { sessions: number; records: number; quarantined: unknown[] };
}

/** The runtime in a child process, spoken to over IPC. */
class Child {
  private readonly pending = new Map<number, (reply: Reply | undefined) => void>();
  private nextId = 0;
  readonly closed: Promise<void>;
  stderr = "";

  private constructor(private readonly process: ChildProcess) {
    process.stderr?.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    process.on("message", (message: Reply) => {
      this.pending.get(message.id)?.(message);
      this.pending.delete(message.id);
    });
    // 'close' comes after the last IPC message is delivered: anything still
    // pending then was never answered.
    this.closed = new Promise((done) => {
      process.on("close", () => {
        for (const answer of this.pending.values()) answer(undefined);
        this.pending.clear();
        done();
      });
    });
  }

  /** How long the last start took to be ready, so that kills during start-up can aim at recovery. */
  static lastStartMs = 300;

  static async start(
    directory: string,
    journalBytes?: number,
  ): Promise<{ child: Child; ready: Ready }> {
    const began = Date.now();
    const args = journalBytes === undefined ? [directory] : [directory, String(journalBytes)];
    const process = fork(childScript, args, {
      cwd: repoRoot,
      execArgv: [],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    const child = new Child(process);
    const ready = await new Promise<Ready>((done, fail) => {
      process.once("message", (message: Ready) => done(message));
      process.once("exit", (code) => fail(new Error(`child exited (${code}): ${child.stderr}`)));
    });
    Child.lastStartMs = Date.now() - began;
    return { child, ready };
  }

  /** The reply, or `undefined` if the child died first. */
  request(message: Record<string, unknown>): Promise<Reply | undefined> {
    const id = ++this.nextId;
    return new Promise((answer) => {
      this.pending.set(id, answer);
      const unsent = () => {
        this.pending.delete(id);
        answer(undefined);
      };
      try {
        // A child killed a moment ago fails the write asynchronously (EPIPE):
        // the callback takes that error, so it is an unanswered request, not a crash.
        this.process.send({ ...message, id }, (error) => {
          if (error) unsent();
        });
      } catch {
        unsent();
      }
    });
  }

  async snapshots(sessionIds: readonly string[]): Promise<string[]> {
    const reply = await this.request({ kind: "snapshot", sessionIds });
    if (!reply?.snapshots) throw new Error(`no snapshot from the child: ${this.stderr}`);
    return reply.snapshots;
  }

  async kill(): Promise<void> {
    this.process.kill("SIGKILL");
    await this.closed;
  }

  /**
   * Starts a runtime and SIGKILLs it after `afterMs`, most often while it is still
   * recovering: replaying the journal into the logs, or checkpointing them.
   */
  static async killDuringStart(directory: string, afterMs: number): Promise<void> {
    const process = fork(childScript, [directory], {
      cwd: repoRoot,
      execArgv: [],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "ignore", "ipc"],
    });
    const closed = new Promise((done) => process.on("close", done));
    await sleep(afterMs);
    process.kill("SIGKILL");
    await closed;
  }
}

// --- the client side -------------------------------------------------------------------

/** One client: runs sessions one after another, one message in flight at a time. */
interface ClientLoop {
  readonly participants: string[];
  sessionId: string | undefined;
  sent: number;
  /** The message whose answer the last crash swallowed; it is retried first. */
  unacked: Envelope | undefined;
}

const acked = new Map<string, Set<string>>();
const sessionIds: string[] = [];
const counts = { sent: 0, acked: 0, retries: 0, retriedDuplicates: 0, refused: [] as string[] };

function markAcked(envelope: Envelope): void {
  const ids = acked.get(envelope.sessionId) ?? new Set<string>();
  acked.set(envelope.sessionId, ids);
  ids.add(envelope.messageId);
  counts.acked++;
}

function nextEnvelope(loop: ClientLoop): Envelope {
  if (loop.sessionId === undefined || loop.sent >= 6) {
    loop.sessionId = randomUUID();
    loop.sent = 0;
    sessionIds.push(loop.sessionId);
    return startEnvelope(loop.sessionId, loop.participants[0] as string, {
      participants: loop.participants,
    });
  }
  loop.sent++;
  const sender = loop.participants[loop.sent % loop.participants.length] as string;
  return proposalEnvelope(loop.sessionId, sender, `p${loop.sent}`);
}

/** Sends until `stop()` says so or the child dies. */
async function runLoop(loop: ClientLoop, child: Child, stop: () => boolean): Promise<void> {
  while (!stop()) {
    const retry = loop.unacked;
    const envelope = retry ?? nextEnvelope(loop);
    loop.unacked = envelope;
    counts.sent++;
    if (retry) counts.retries++;
    const reply = await child.request({
      kind: "send",
      envelope: toBinary(EnvelopeSchema, envelope),
    });
    if (reply === undefined) return; // killed: the message stays unacknowledged
    loop.unacked = undefined;
    if (!reply.ok) {
      counts.refused.push(`${envelope.messageType} ${envelope.messageId}: ${reply.code}`);
      continue;
    }
    if (retry && reply.duplicate) counts.retriedDuplicates++;
    markAcked(envelope);
  }
}

// --- checks against the log, with the child dead ---------------------------------------------

// The checks open a copy of the directory, so that what the killed runtime left
// (records only in the journal, a checkpoint cut short) is replayed by the next
// runtime, not by the test.
async function onCopy<T>(directory: string, check: (copy: string) => Promise<T>): Promise<T> {
  const copy = `${directory}-check`;
  await rm(copy, { recursive: true, force: true });
  await cp(directory, copy, { recursive: true });
  try {
    return await check(copy);
  } finally {
    await rm(copy, { recursive: true, force: true });
  }
}

async function checkLog(directory: string): Promise<void> {
  await onCopy(directory, checkLogAt);
}

async function checkLogAt(directory: string): Promise<void> {
  const store = createFileStore({ directory, logger: quiet });
  const logs = new Map<string, string[]>();
  for await (const stored of store.loadAll()) {
    if ("error" in stored) throw new Error(`session ${stored.sessionId}: ${stored.error}`);
    logs.set(
      stored.sessionId,
      stored.records.flatMap((r) => (r.kind === "incoming" ? [r.envelope.messageId] : [])),
    );
  }
  await store.close();
  for (const [sessionId, ids] of logs) {
    // Never a second copy, whatever was retried.
    expect(new Set(ids).size, `duplicate message in ${sessionId}`).toBe(ids.length);
  }
  for (const [sessionId, ids] of acked) {
    const logged = new Set(logs.get(sessionId) ?? []);
    for (const id of ids)
      expect(logged.has(id), `acked ${id} missing from ${sessionId}`).toBe(true);
  }
}

/** What an independent runtime rebuilds from the log. */
async function replay(directory: string): Promise<string[]> {
  return onCopy(directory, replayAt);
}

async function replayAt(directory: string): Promise<string[]> {
  const store = createFileStore({ directory, logger: quiet });
  const runtime = createRuntime({
    clock: { now: () => Date.now() },
    store,
    logger: quiet,
    limits: LIMITS,
  });
  const report = await runtime.recover();
  expect(report.quarantined).toEqual([]);
  const snapshots = sessionIds.map((id) => canonical(runtime.inspectSession(id) ?? null));
  await runtime.close();
  return snapshots;
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

// --- the test ---------------------------------------------------------------------------

let directory: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "macp-store-crash-"));
  // The child runs the built packages, not the sources vitest maps @macp/* to.
  try {
    execFileSync(
      process.execPath,
      [join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-b", "packages/store-file"],
      { cwd: repoRoot, stdio: "pipe", timeout: 120_000 },
    );
  } catch (error) {
    const built = ["core", "proto", "store-file"].every((name) =>
      existsSync(join(repoRoot, "packages", name, "dist", "index.js")),
    );
    if (!built) throw error;
    const output = (error as { stdout?: Buffer }).stdout?.toString() ?? String(error);
    console.warn(`the build reported errors; running against the existing dist:\n${output}`);
  }
}, 180_000);

afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("crash safety", () => {
  it(`keeps every acknowledged message through ${CYCLES} SIGKILLs`, async () => {
    const began = Date.now();
    const loops: ClientLoop[] = Array.from({ length: LOOPS }, (_, i) => ({
      participants: [`agent://client-${i}`, `agent://peer-${i}`],
      sessionId: undefined,
      sent: 0,
      unacked: undefined,
    }));
    let expected: string[] | undefined;
    let cycles = 0;
    let quiescentChecks = 0;
    let startKills = 0;

    for (let cycle = 0; cycle <= CYCLES; cycle++) {
      // Every other run with a journal small enough to checkpoint many times.
      const { child, ready } = await Child.start(directory, cycle % 2 ? SMALL_JOURNAL : undefined);
      expect(ready.report.quarantined).toEqual([]);
      // The restarted runtime holds exactly what the log replays to (or, after a
      // quiet kill, exactly what the live runtime held).
      if (expected) expect(await child.snapshots(sessionIds)).toEqual(expected);
      if (cycle === CYCLES) {
        await child.kill();
        break;
      }
      const quiescent = cycle % 4 === 3;
      let stopped = false;
      const running = loops.map((loop) => runLoop(loop, child, () => stopped));
      await sleep(20 + Math.floor(Math.random() * 230));
      if (quiescent) {
        stopped = true;
        await Promise.all(running);
        const live = await child.snapshots(sessionIds);
        await child.kill();
        await checkLog(directory);
        expected = live;
        quiescentChecks++;
      } else {
        await child.kill();
        await Promise.all(running);
        if (cycle % 3 === 1) {
          // Recovery runs at the end of the start-up, after the modules load.
          const afterMs = Child.lastStartMs * (0.7 + Math.random() * 0.4);
          await Child.killDuringStart(directory, Math.round(afterMs));
          startKills++;
        }
        await checkLog(directory);
        expected = await replay(directory);
      }
      cycles++;
      if (Date.now() - began > TIME_BUDGET_MS && cycles >= 20) break;
    }

    expect(counts.refused).toEqual([]);
    expect(cycles).toBeGreaterThanOrEqual(20);
    expect(quiescentChecks).toBeGreaterThan(0);
    expect(counts.acked).toBeGreaterThan(cycles * LOOPS);
    console.info(
      `crash test: ${cycles} kills in ${Date.now() - began} ms, ${sessionIds.length} sessions, ` +
        `${counts.sent} sends, ${counts.acked} acks, ${counts.retries} retries ` +
        `(${counts.retriedDuplicates} answered as duplicates), ${startKills} kills during start-up`,
    );
    // A generous bound: on a loaded machine the 24 cycles take minutes, and time is not what this checks.
  }, 360_000);
});
