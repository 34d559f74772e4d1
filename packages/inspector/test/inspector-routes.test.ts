import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { as, commitment, newSessionId, proposal, Reader, serve, start } from "./support.js";

async function statusOf(promise: Promise<unknown>): Promise<Code | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

/** The first message of a stream: calling it is how a server stream reports a refused call. */
async function firstOf(stream: AsyncIterable<unknown>): Promise<unknown> {
  for await (const item of stream) return item;
  return undefined;
}

describe("WatchSession", () => {
  it("replays a session's history decoded, then follows it live to its resolution", async () => {
    const { macp, inspector } = serve();
    const sessionId = newSessionId();
    expect(
      (await macp.send({ envelope: start(sessionId, "lead", ["alice"]) }, as("lead"))).ack?.ok,
    ).toBe(true);
    expect(
      (await macp.send({ envelope: proposal(sessionId, "alice", "A") }, as("alice"))).ack?.ok,
    ).toBe(true);

    const abort = new AbortController();
    const watch = new Reader(inspector.watchSession({ sessionId }, as("lead", abort.signal)));
    const first = await watch.next();
    expect(first.item.case).toBe("snapshot");
    const history = await watch.until(
      (item) => item.item.case === "entry" && item.item.value.sequence === 2n,
    );
    const entries = history.flatMap((item) =>
      item.item.case === "entry" ? [item.item.value] : [],
    );
    expect(entries.map((entry) => [entry.sequence, entry.envelope?.messageType])).toEqual([
      [1n, "SessionStart"],
      [2n, "Proposal"],
    ]);
    // Payload fields, not bytes.
    expect(JSON.parse(entries[1]?.payloadJson ?? "")).toEqual({
      proposalId: "p1",
      option: "A",
      rationale: "cheapest",
    });
    expect(entries[1]?.payloadType).toBe("macp.modes.decision.v1.ProposalPayload");
    expect(JSON.parse(entries[0]?.payloadJson ?? "").participants).toEqual(["alice"]);

    // Live: the Commitment arrives, then a snapshot with the resolution and the verdict.
    const committed = commitment(sessionId, "lead", "policy.default");
    expect((await macp.send({ envelope: committed }, as("lead"))).ack?.ok).toBe(true);
    // The entry, then a snapshot with the resolution and the verdict (a lifecycle snapshot may come between).
    const live = await watch.until(
      (item) => item.item.case === "snapshot" && item.item.value.verdict !== undefined,
    );
    const sequences = live.flatMap((item) =>
      item.item.case === "entry" ? [item.item.value.sequence] : [],
    );
    expect(sequences).toEqual([3n]);
    const resolved = live.at(-1);
    if (resolved?.item.case !== "snapshot") throw new Error("expected a snapshot");
    expect(JSON.parse(resolved.item.value.resolutionJson).action).toBe("decision.selected");
    expect(resolved.item.value.verdict).toMatchObject({
      allowed: true,
      policyVersion: "policy.default",
      commitmentMessageId: committed.messageId,
    });
    expect(resolved.item.value.acceptedCount).toBe(3n);
    expect(JSON.parse(resolved.item.value.modeStateJson)).toBeTypeOf("object");
    abort.abort();
  });

  it("shows refusals of the session with their codes, and a policy denial as the verdict", async () => {
    const { macp, inspector } = serve();
    const policy = {
      policyId: "policy.evaluate-first",
      mode: "macp.mode.decision.v1",
      description: "an evaluation before any commitment",
      rules: '{"evaluation":{"required_before_voting":true}}',
      schemaVersion: 1,
    };
    const registered = await macp.registerPolicy({ policyDescriptor: policy }, as("admin"));
    expect(registered.error).toBe("");
    const sessionId = newSessionId();
    await macp.send({ envelope: start(sessionId, "lead", ["alice"], policy.policyId) }, as("lead"));
    expect(
      (await macp.send({ envelope: proposal(sessionId, "alice", "A") }, as("alice"))).ack?.ok,
    ).toBe(true);

    const abort = new AbortController();
    const watch = new Reader(inspector.watchSession({ sessionId }, as("lead", abort.signal)));
    await watch.until((item) => item.item.case === "entry");

    const intruder = proposal(sessionId, "mallory", "B");
    const nack = await macp.send({ envelope: intruder }, as("mallory"));
    expect(nack.ack?.error?.code).toBe("FORBIDDEN");
    const forbidden = await watch.until((item) => item.item.case === "refusal");
    const refusal = forbidden.at(-1)?.item;
    if (refusal?.case !== "refusal") throw new Error("expected a refusal");
    expect(refusal.value).toMatchObject({ caller: "mallory", rpc: "Send" });
    expect(refusal.value.error?.code).toBe("FORBIDDEN");
    expect(refusal.value.envelope?.messageId).toBe(intruder.messageId);
    expect(JSON.parse(refusal.value.payloadJson).option).toBe("B");

    const denied = commitment(sessionId, "lead", policy.policyId);
    expect((await macp.send({ envelope: denied }, as("lead"))).ack?.error?.code).toBe(
      "POLICY_DENIED",
    );
    const after = await watch.until(
      (item) => item.item.case === "snapshot" && item.item.value.verdict !== undefined,
    );
    const verdict = after.at(-1)?.item;
    if (verdict?.case !== "snapshot") throw new Error("expected a snapshot");
    expect(verdict.value.verdict).toMatchObject({
      allowed: false,
      policyVersion: policy.policyId,
      commitmentMessageId: denied.messageId,
    });
    expect(verdict.value.verdict?.reasons).toEqual([
      "an evaluation with a stance is required before commitment",
    ]);
    abort.abort();
  });

  it("refuses callers who may not read the session, and lets observers read every one", async () => {
    const { macp, inspector } = serve();
    const sessionId = newSessionId();
    await macp.send({ envelope: start(sessionId, "lead", ["alice"]) }, as("lead"));
    expect(await statusOf(firstOf(inspector.watchSession({ sessionId }, as("mallory"))))).toBe(
      Code.PermissionDenied,
    );
    expect(await statusOf(firstOf(inspector.watchSession({ sessionId })))).toBe(
      Code.Unauthenticated,
    );
    expect(
      await statusOf(firstOf(inspector.watchSession({ sessionId: newSessionId() }, as("lead")))),
    ).toBe(Code.NotFound);
    const seen = await firstOf(inspector.watchSession({ sessionId }, as("auditor")));
    expect(seen).toMatchObject({ item: { case: "snapshot" } });
  });

  it("replays only the history after after_sequence", async () => {
    const { macp, inspector } = serve();
    const sessionId = newSessionId();
    await macp.send({ envelope: start(sessionId, "lead", ["alice"]) }, as("lead"));
    await macp.send({ envelope: proposal(sessionId, "alice", "A") }, as("alice"));
    const abort = new AbortController();
    const watch = new Reader(
      inspector.watchSession({ sessionId, afterSequence: 1n }, as("alice", abort.signal)),
    );
    const read = await watch.until((item) => item.item.case === "entry");
    const entry = read.at(-1)?.item;
    expect(
      entry?.case === "entry" && [entry.value.sequence, entry.value.envelope?.messageType],
    ).toEqual([2n, "Proposal"]);
    abort.abort();
  });

  it("ends a watcher that stops reading with RESOURCE_EXHAUSTED instead of buffering without limit", async () => {
    const { macp, inspector } = serve({ streamBuffer: 4 });
    const sessionId = newSessionId();
    await macp.send({ envelope: start(sessionId, "lead", ["alice"]) }, as("lead"));
    for (let index = 0; index < 8; index++) {
      const offer = proposal(sessionId, "alice", `option ${index}`, `p${index}`);
      expect((await macp.send({ envelope: offer }, as("alice"))).ack?.ok).toBe(true);
    }
    // Subscribing replays 9 entries (paced on the reader) plus the refusals and snapshots pushed without pacing.
    const stream = inspector.watchSession({ sessionId }, as("lead"));
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.item.case).toBe("snapshot");
    for (let index = 0; index < 8; index++) {
      await macp.send({ envelope: proposal(sessionId, "mallory", "x") }, as("mallory"));
    }
    let code: Code | undefined;
    try {
      for (;;) {
        const result = await iterator.next();
        if (result.done === true) break;
      }
    } catch (error) {
      code = ConnectError.from(error).code;
    }
    expect(code).toBe(Code.ResourceExhausted);
  });
});

describe("WatchRefusals", () => {
  it("shows a caller its own refusals and those of sessions it may read; observers see all", async () => {
    const { macp, inspector } = serve();
    const open = newSessionId();
    await macp.send({ envelope: start(open, "lead", ["alice"]) }, as("lead"));
    const hidden = newSessionId();
    await macp.send({ envelope: start(hidden, "other", ["bob"]) }, as("other"));
    // Refused: mallory into lead's session, and into other's session.
    await macp.send({ envelope: proposal(open, "mallory", "x") }, as("mallory"));
    await macp.send({ envelope: proposal(hidden, "mallory", "y") }, as("mallory"));
    const marker = await macp.send({ envelope: proposal(open, "mallory", "last") }, as("mallory"));
    expect(marker.ack?.ok).toBe(false);

    const seenBy = async (agent: string): Promise<string[]> => {
      const abort = new AbortController();
      const reader = new Reader(inspector.watchRefusals({}, as(agent, abort.signal)));
      const read = await reader.until(
        (item) => item.refusal?.envelope?.messageId === marker.ack?.messageId,
      );
      abort.abort();
      return read.map((item) => JSON.parse(item.refusal?.payloadJson ?? "{}").option as string);
    };
    expect(await seenBy("lead")).toEqual(["x", "last"]);
    expect(await seenBy("mallory")).toEqual(["x", "y", "last"]);
    expect(await seenBy("auditor")).toEqual(["x", "y", "last"]);
  });

  it("records the inline refusals of StreamSession calls", async () => {
    const { macp, inspector, refusals } = serve();
    const sessionId = newSessionId();
    await macp.send({ envelope: start(sessionId, "lead", ["alice"]) }, as("lead"));
    const intruder = proposal(sessionId, "mallory", "z");
    const abort = new AbortController();
    const frames = (async function* () {
      yield { envelope: intruder };
      await new Promise((resolve) => abort.signal.addEventListener("abort", resolve));
    })();
    const replies = new Reader(macp.streamSession(frames, as("mallory", abort.signal)));
    const reply = (await replies.next()).response;
    expect(reply.case === "error" && reply.value.code).toBe("FORBIDDEN");
    expect(refusals.recent().map((refusal) => [refusal.rpc, refusal.envelope?.messageId])).toEqual([
      ["StreamSession", intruder.messageId],
    ]);
    const watch = new Reader(inspector.watchRefusals({}, as("auditor", abort.signal)));
    expect((await watch.next()).refusal?.rpc).toBe("StreamSession");
    abort.abort();
  });

  it("refuses an unauthenticated watcher", async () => {
    const { inspector } = serve();
    expect(await statusOf(firstOf(inspector.watchRefusals({})))).toBe(Code.Unauthenticated);
  });
});
