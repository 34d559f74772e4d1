// P4 (in-memory): recovery by replay of a 100,000-entry history.
import { createMemoryStore, createRuntime, type Identity, type MacpRuntime } from "@macp/core";
import type { Envelope } from "@macp/proto";
import {
  decisionHistory,
  envelope,
  evaluationPayload,
  identities,
  median,
  openSessions,
  sessionIdFor,
  UNLIMITED,
  VOTER,
} from "./traffic.js";

export interface P4Result {
  readonly sessions: number;
  readonly entries: number;
  readonly entriesPerSecond: number;
}

/**
 * What each session's 100 entries are:
 * - "mix": a whole decision (start, 4 proposals, 40 evaluations, 8 objections,
 *   46 votes, commitment; see {@link decisionHistory});
 * - "evaluations": start, one proposal and 98 evaluations, the worst case for
 *   state that grows with every message.
 */
export type P4Shape = "mix" | "evaluations";

const SESSIONS = 1000;
const ENTRIES = 100_000;
const ROUNDS = 6;

export async function runP4(shape: P4Shape = "mix"): Promise<P4Result> {
  const clock = { now: () => 1_750_000_000_000 };
  const store = createMemoryStore();
  const runtime = createRuntime({ clock, store, limits: UNLIMITED });
  if (shape === "mix") await writeMixedHistory(runtime);
  else await writeEvaluationHistory(runtime);
  if (store.recordCount !== ENTRIES)
    throw new Error(`expected ${ENTRIES} records, have ${store.recordCount}`);
  const rates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const fresh = createRuntime({ clock, store, limits: UNLIMITED });
    const started = process.hrtime.bigint();
    const report = await fresh.recover();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (report.records !== ENTRIES || report.quarantined.length > 0) {
      throw new Error(`recovery replayed ${report.records} records`);
    }
    if (round > 0) rates.push(ENTRIES / seconds); // round 0 warms the JIT
  }
  return { sessions: SESSIONS, entries: ENTRIES, entriesPerSecond: median(rates) };
}

/** Every session's k-th message before any session's (k+1)-th, as concurrent sessions log them. */
async function writeMixedHistory(runtime: MacpRuntime): Promise<void> {
  const histories = Array.from({ length: SESSIONS }, (_, i) => decisionHistory(sessionIdFor(i)));
  const length = histories[0]?.length ?? 0;
  if (length * SESSIONS !== ENTRIES) throw new Error(`a history has ${length} messages`);
  for (let step = 0; step < length; step++) {
    for (const history of histories) {
      const { envelope: env, as } = history[step] as { envelope: Envelope; as: Identity };
      const ack = await runtime.send(env, as);
      if (ack.isErr()) throw new Error(`refused: ${ack.error.code} ${ack.error.message}`);
    }
  }
}

async function writeEvaluationHistory(runtime: MacpRuntime): Promise<void> {
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
}
