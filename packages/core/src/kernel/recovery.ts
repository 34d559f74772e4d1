import { err, ok, type Result } from "neverthrow";
import type { RecoveryReport } from "../runtime-api.js";
import type { LogRecord } from "../store/log-record.js";
import type { Kernel } from "./kernel.js";
import type { Session } from "./session.js";
import { applyRecord } from "./session-machine.js";
import { openFromLog } from "./session-replay.js";

/**
 * Rebuilds every session from the store. A log that cannot be replayed
 * quarantines its session (or fails recovery when `strict`); every id found
 * stays reserved.
 */
export async function recover(kernel: Kernel, strict: boolean): Promise<RecoveryReport> {
  let sessions = 0;
  let records = 0;
  const quarantined: { sessionId: string; reason: string }[] = [];
  const now = kernel.clock.now();
  const table = kernel.table;
  for await (const stored of kernel.log.store.loadAll()) {
    // With a shared store, the change feed may have loaded it already.
    if (table.get(stored.sessionId) !== undefined) continue;
    table.tombstones.add(stored.sessionId);
    const replayed =
      "error" in stored ? err(stored.error) : replay(kernel, stored.sessionId, stored.records);
    if (replayed.isErr()) {
      if (strict) {
        throw new Error(`session ${stored.sessionId} could not be recovered: ${replayed.error}`);
      }
      kernel.logger.error("session quarantined: its log could not be replayed", {
        sessionId: stored.sessionId,
        reason: replayed.error,
      });
      quarantined.push({ sessionId: stored.sessionId, reason: replayed.error });
      continue;
    }
    sessions++;
    records += "records" in stored ? stored.records.length : 0;
    const session = replayed.value;
    if (session === undefined) continue;
    const evictable =
      session.isTerminal && (session.endedAtMs ?? 0) + kernel.limits.sessionRetentionMs <= now;
    if (!evictable) {
      table.tombstones.delete(stored.sessionId);
      table.insert(session);
      kernel.observer?.sessionLoaded?.(stored.sessionId, session.startedAtMs);
    } else {
      // Never loaded, so never evicted later: the store may let go of it now.
      // Observers hear of it as rebuilt and evicted at once, so that whatever
      // follows evictions (disk retention) also follows the sessions that
      // were over before the restart.
      kernel.observer?.sessionLoaded?.(stored.sessionId, session.startedAtMs);
      kernel.observer?.sessionEvicted?.(stored.sessionId);
      kernel.log.store.evicted?.(stored.sessionId);
    }
  }
  kernel.logger.info("recovery complete", { sessions, records, quarantined: quarantined.length });
  return { sessions, records, quarantined };
}

/**
 * Rebuilds one session from its log (DET-13) through the session machine,
 * using only what the log recorded: the binding on the SessionStart,
 * acceptance times, runtime records. A log with no records yields no session.
 */
function replay(
  kernel: Kernel,
  sessionId: string,
  records: readonly LogRecord[],
): Result<Session | undefined, string> {
  const opened = openFromLog(kernel, sessionId, records[0]);
  if (opened.isErr() || opened.value === undefined) return opened.map(() => undefined);
  const { session } = opened.value;
  for (let index = 1; index < records.length; index++) {
    const record = records[index] as LogRecord;
    const applied = applyRecord(session, record);
    if (applied.isErr() && record.kind === "incoming") {
      const envelope = record.envelope;
      return err(
        `record ${index + 1} (${envelope.messageType} ${envelope.messageId}) no longer applies: ${applied.error.code} ${applied.error.message}`,
      );
    }
  }
  return ok(session);
}
