// The file store tests' fixtures and harness. Not part of the public API.
import { chmod, cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import {
  encodeLogRecord,
  type IncomingRecord,
  type InternalRecord,
  type LogRecord,
  type RuntimeLogger,
  type StoredSession,
} from "@macp/core";
import { EnvelopeSchema, ModeDescriptorSchema } from "@macp/proto";
import { afterEach, beforeEach } from "vitest";
import {
  createFileStore,
  type FileStore,
  type FileStoreFileSystem,
  type FileStoreHandle,
  type FileStoreOptions,
  nodeFileSystem,
} from "../index.js";
import { logFileName } from "../log-file.js";

// --- fixtures ------------------------------------------------------------------

export const SESSION_A = "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f";
export const SESSION_B = "0d9e8f7a-6b5c-4d3e-9f2a-1b0c9d8e7f6a";

export function incoming(sessionId: string, messageId: string, start = false): IncomingRecord {
  const envelope = create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: "macp.mode.decision.v1",
    messageType: start ? "SessionStart" : "Proposal",
    messageId,
    sessionId,
    sender: "agent://alice",
    timestampUnixMs: 1_700_000_000_000n,
    payload: new Uint8Array([1, 2, 3, messageId.length]),
  });
  if (!start) return { kind: "incoming", envelope, receivedAtMs: 1_700_000_000_123 };
  return {
    kind: "incoming",
    envelope,
    receivedAtMs: 1_700_000_000_100,
    binding: {
      modeVersion: "1.0.0",
      policy: {
        policyId: "policy.default",
        mode: "*",
        description: "default",
        rules: { voting: { algorithm: "none" } },
        schemaVersion: 1,
        registeredAtUnixMs: 0,
      },
      modeDescriptor: create(ModeDescriptorSchema, {
        mode: "macp.mode.decision.v1",
        modeVersion: "1.0.0",
        title: "Decision",
      }),
      strict: true,
      expiresAtMs: 1_700_000_060_000,
      maxSuspendMs: 604_800_000,
      semanticsRev: 1,
    },
  };
}

export function internal(receivedAtMs = 1_700_000_001_000): InternalRecord {
  return { kind: "internal", type: "SessionCancel", receivedAtMs, payload: Uint8Array.of(10, 2) };
}

/** Records compare by their encoding: the codec is the store's contract. */
export function bytesOf(records: readonly LogRecord[] | undefined): number[][] {
  return (records ?? []).map((record) => [...encodeLogRecord(record)]);
}

export interface CapturedLogger extends RuntimeLogger {
  readonly lines: string[];
}

export function capture(): CapturedLogger {
  const lines: string[] = [];
  const push = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ""}`);
  };
  return { lines, info: push("info"), warn: push("warn"), error: push("error") };
}

export async function collect(store: FileStore): Promise<StoredSession[]> {
  const out: StoredSession[] = [];
  for await (const session of store.loadAll()) out.push(session);
  return out;
}

export function flip(bytes: Uint8Array, at: number): void {
  bytes[at] = (bytes[at] ?? 0) ^ 0x5a;
}

export function systemError(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

/**
 * A file system whose calls fail on demand. `faults` is read at each call, so a
 * test can make the disk full, then free it again.
 */
export interface Faults {
  /** Which files the write, datasync, truncate and create faults hit. Default: all. */
  scope?: "logs" | "journal";
  /** Writes fail with this code after writing `writeBudget` more bytes. */
  writeError?: string;
  writeBudget?: number;
  datasyncError?: string;
  createError?: string;
  readdirError?: string;
  readError?: string;
  truncateError?: string;
  unlinkError?: string;
}

export function faultyFs(faults: Faults): FileStoreFileSystem {
  const hit = (path: string): boolean =>
    faults.scope === undefined ||
    (faults.scope === "logs" ? path.includes("/logs/") : path.endsWith("journal.log"));
  const wrap = (handle: FileStoreHandle, path: string): FileStoreHandle => ({
    async write(buffer, offset, length, position) {
      if (faults.writeError === undefined || !hit(path)) {
        return handle.write(buffer, offset, length, position);
      }
      const budget = faults.writeBudget ?? 0;
      if (budget <= 0) throw systemError(faults.writeError);
      const part = Math.min(budget, length);
      faults.writeBudget = budget - part;
      return handle.write(buffer, offset, part, position);
    },
    async datasync() {
      if (faults.datasyncError && hit(path)) throw systemError(faults.datasyncError);
      return handle.datasync();
    },
    async truncate(length) {
      if (faults.truncateError && hit(path)) throw systemError(faults.truncateError);
      return handle.truncate(length);
    },
    close: () => handle.close(),
  });
  return {
    ...nodeFileSystem,
    async readdir(path) {
      if (faults.readdirError) throw systemError(faults.readdirError);
      return nodeFileSystem.readdir(path);
    },
    async readFile(path) {
      if (faults.readError && path.includes("/logs/")) throw systemError(faults.readError);
      return nodeFileSystem.readFile(path);
    },
    async open(path, flags) {
      if (flags === "wx" && faults.createError && hit(path)) {
        throw systemError(faults.createError);
      }
      return wrap(await nodeFileSystem.open(path, flags), path);
    },
    async unlink(path) {
      if (faults.unlinkError) throw systemError(faults.unlinkError);
      return nodeFileSystem.unlink(path);
    },
  };
}

// --- harness ---------------------------------------------------------------------

let rootPath = "";
const stores: FileStore[] = [];

/** Closes the store after the test. */
export function closeAfterTest(store: FileStore): FileStore {
  stores.push(store);
  return store;
}

/** The test's temporary directory; the store's data directory is `data` inside it. */
export function root(): string {
  return rootPath;
}

/** Registers the hooks that give each test a fresh directory and close its stores. */
export function useStoreHarness(): void {
  beforeEach(async () => {
    rootPath = await mkdtemp(join(tmpdir(), "macp-store-file-"));
  });
  afterEach(cleanUp);
}

async function cleanUp(): Promise<void> {
  await Promise.all(stores.splice(0).map((store) => store.close().catch(() => {})));
  // Permission tests may leave directories locked; rm needs them open again.
  for (const path of [rootPath, join(rootPath, "data"), join(rootPath, "data", "logs")]) {
    await chmod(path, 0o700).catch(() => {});
  }
  await rm(rootPath, { recursive: true, force: true });
}

export function open(options: FileStoreOptions = {}): FileStore {
  const store = createFileStore({ directory: join(root(), "data"), logger: capture(), ...options });
  stores.push(store);
  return store;
}

export async function reopen(store: FileStore, options: FileStoreOptions = {}): Promise<FileStore> {
  await store.close();
  return open(options);
}

export function logPath(sessionId: string): string {
  return join(root(), "data", "logs", logFileName(sessionId));
}

/**
 * What a process crash leaves: the files as they are now, with no checkpoint or
 * close to follow. A store opened on the copy sees what a restart would.
 */
export async function crashCopy(): Promise<string> {
  const copy = join(root(), `crashed-${Math.random().toString(36).slice(2)}`);
  await cp(join(root(), "data"), copy, { recursive: true });
  return copy;
}

export function openAt(directory: string, options: FileStoreOptions = {}): FileStore {
  const store = createFileStore({ directory, logger: capture(), ...options });
  stores.push(store);
  return store;
}

/** Turns the closed store in `data` into what version 1 left: its marker, its logs, no journal. */
export async function markVersion1(): Promise<void> {
  await writeFile(
    join(root(), "data", "macp-store.json"),
    '{"format":"macp-store-file","version":1}\n',
  );
  await rm(join(root(), "data", "journal.log"), { force: true });
}

export function messageIds(stored: StoredSession | undefined): string[] {
  if (!stored || !("records" in stored)) return [];
  return stored.records.map((r) => (r.kind === "incoming" ? r.envelope.messageId : r.type));
}

export const isRoot = process.getuid?.() === 0;
