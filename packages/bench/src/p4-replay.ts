// P4 (in-memory): recovery by replay of a 100,000-entry history.
import { createMemoryStore, createRuntime } from "@macp/core";
import {
  envelope,
  evaluationPayload,
  identities,
  median,
  openSessions,
  UNLIMITED,
  VOTER,
} from "./traffic.js";

export interface P4Result {
  readonly sessions: number;
  readonly entries: number;
  readonly entriesPerSecond: number;
}

const SESSIONS = 1000;
const ENTRIES = 100_000;

export async function runP4(): Promise<P4Result> {
  const clock = { now: () => 1_750_000_000_000 };
  const store = createMemoryStore();
  const runtime = createRuntime({ clock, store, limits: UNLIMITED });
  const ids = await openSessions(runtime, SESSIONS);
  const perSession = ENTRIES / SESSIONS - 2; // SessionStart and Proposal are already there
  for (let k = 0; k < perSession; k++) {
    for (const id of ids) {
      const ack = await runtime.send(
        envelope(id, "Evaluation", `e${k}`, VOTER, evaluationPayload),
        identities.voter,
      );
      if (ack.isErr()) throw new Error(`refused: ${ack.error.code}`);
    }
  }
  if (store.recordCount !== ENTRIES)
    throw new Error(`expected ${ENTRIES} records, have ${store.recordCount}`);
  const rates: number[] = [];
  for (let round = 0; round < 6; round++) {
    const fresh = createRuntime({ clock, store, limits: UNLIMITED });
    const started = process.hrtime.bigint();
    const report = await fresh.recover();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (report.records !== ENTRIES || report.quarantined.length > 0) {
      throw new Error(`recovery replayed ${report.records} records`);
    }
    if (round > 0) rates.push(ENTRIES / seconds);
  }
  return { sessions: SESSIONS, entries: ENTRIES, entriesPerSecond: median(rates) };
}
