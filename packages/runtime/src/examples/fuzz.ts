// Malformed and hostile input: every case must be refused with the code the
// protocol prescribes, and none may disturb a healthy session running beside it.

import { decision, type Envelope, SignalPayloadSchema } from "@macp/proto";
import {
  type Agent,
  Code,
  type CommitmentFields,
  commitmentPayload,
  type Example,
  type ExpectedAck,
  encode,
  envelope,
  expectAck,
  expectSession,
  expectStatus,
  initialize,
  newMessageId,
  newSessionId,
  requireAck,
  type SessionStartFields,
  SessionState,
  sessionMessages,
  sessionStartPayload,
  withConnection,
} from "./support.js";

const MODE = "macp.mode.decision.v1";

/** Bytes that are not a protobuf message: a varint that never ends. */
const GARBAGE = new Uint8Array([0xff, 0xff, 0xff, 0xff]);

function payloadLimit(): number {
  const configured = Number.parseInt(process.env.MACP_MAX_PAYLOAD_BYTES ?? "", 10);
  return Number.isSafeInteger(configured) && configured > 0 ? configured : 1_048_576;
}

export const runFuzz: Example = (options) =>
  withConnection(options, async (connection) => {
    const { log, client } = connection;
    const fuzzer = connection.agent("agent://fuzzer");
    const peer = connection.agent("agent://peer");
    const outsider = connection.agent("agent://outsider");
    const startFields: SessionStartFields = { intent: "fuzz", participants: [fuzzer.id, peer.id] };
    const startWith = (fields: Partial<SessionStartFields>) =>
      sessionStartPayload({ ...startFields, ...fields });
    const validStart = startWith({});
    const start = (sessionId: string, payload: Uint8Array, mode = MODE) =>
      envelope({ mode, sessionId, sender: fuzzer.id, messageType: "SessionStart", payload });

    // Version negotiation.
    await initialize(connection, "fuzz-example");
    await expectStatus(
      log,
      "Initialize (no versions)",
      client.initialize({ supportedProtocolVersions: [] }),
      [Code.InvalidArgument],
    );
    await expectStatus(
      log,
      "Initialize (only 99.0)",
      client.initialize({ supportedProtocolVersions: ["99.0"] }),
      [Code.FailedPrecondition],
    );
    await expectStatus(
      log,
      "GetManifest (unknown agent)",
      client.getManifest({ agentId: "demo-agent" }),
      [Code.NotFound],
    );

    // Envelope shape: checked before anything else.
    const check = async (step: string, sent: Envelope, expected: ExpectedAck, agent = fuzzer) =>
      expectAck(log, step, await agent.send(sent), expected);
    const nack = (step: string, sent: Envelope, code: string) =>
      check(step, sent, { ok: false, code });
    await nack(
      "macp_version 2.0",
      { ...start(newSessionId(), validStart), macpVersion: "2.0" },
      "UNSUPPORTED_PROTOCOL_VERSION",
    );
    await nack(
      "empty message_id",
      { ...start(newSessionId(), validStart), messageId: "" },
      "INVALID_ENVELOPE",
    );
    await nack(
      "empty message_type",
      { ...start(newSessionId(), validStart), messageType: "" },
      "INVALID_ENVELOPE",
    );
    await nack(
      "SessionStart without mode",
      start(newSessionId(), validStart, ""),
      "INVALID_ENVELOPE",
    );
    await nack(
      "Proposal without session_id",
      envelope({ mode: MODE, sessionId: "", sender: fuzzer.id, messageType: "Proposal" }),
      "INVALID_ENVELOPE",
    );
    await nack(
      "Signal carrying a session_id",
      envelope({
        mode: "",
        sessionId: newSessionId(),
        sender: fuzzer.id,
        messageType: "Signal",
        payload: encode(SignalPayloadSchema, { signalType: "progress" }),
      }),
      "INVALID_ENVELOPE",
    );
    const limit = payloadLimit();
    await nack(
      `payload of ${limit + 1} bytes`,
      start(newSessionId(), new Uint8Array(limit + 1)),
      "PAYLOAD_TOO_LARGE",
    );

    // Identity.
    expectAck(
      log,
      "no credentials",
      requireAck(
        "no credentials",
        (await client.send({ envelope: start(newSessionId(), validStart) })).ack,
      ),
      { ok: false, code: "UNAUTHENTICATED" },
    );
    await nack(
      "spoofed sender",
      { ...start(newSessionId(), validStart), sender: "agent://someone-else" },
      "UNAUTHENTICATED",
    );

    // SessionStart validation.
    await nack("human-readable session id", start("my-session", validStart), "INVALID_SESSION_ID");
    await nack(
      "upper-case UUID session id",
      start(newSessionId().toUpperCase(), validStart),
      "INVALID_SESSION_ID",
    );
    await nack(
      "unknown mode",
      start(newSessionId(), validStart, "macp.mode.nonexistent.v99"),
      "MODE_NOT_SUPPORTED",
    );
    await nack("garbage SessionStart payload", start(newSessionId(), GARBAGE), "INVALID_ENVELOPE");
    await nack(
      "empty SessionStart payload",
      start(newSessionId(), new Uint8Array(0)),
      "INVALID_ENVELOPE",
    );
    await nack("ttl_ms 0", start(newSessionId(), startWith({ ttlMs: 0 })), "INVALID_ENVELOPE");
    await nack(
      "ttl_ms over 24 h",
      start(newSessionId(), startWith({ ttlMs: 86_400_001 })),
      "INVALID_ENVELOPE",
    );
    await nack(
      "no participants",
      start(newSessionId(), startWith({ participants: [] })),
      "INVALID_ENVELOPE",
    );
    await nack(
      "duplicate participants",
      start(newSessionId(), startWith({ participants: [peer.id, peer.id] })),
      "INVALID_ENVELOPE",
    );
    await nack(
      "unknown mode_version",
      start(newSessionId(), startWith({ modeVersion: "9.9.9" })),
      "INVALID_ENVELOPE",
    );
    await nack(
      "unknown policy",
      start(newSessionId(), startWith({ policyVersion: "policy.nonexistent.v999" })),
      "UNKNOWN_POLICY_VERSION",
    );

    // A healthy session to aim the remaining cases at.
    const sessionId = newSessionId();
    const firstStart = start(sessionId, validStart);
    await check("valid SessionStart", firstStart, { ok: true, state: SessionState.OPEN });
    await check("SessionStart retried", firstStart, { ok: true, duplicate: true });
    await nack(
      "second SessionStart for the id",
      { ...firstStart, messageId: newMessageId() },
      "SESSION_ALREADY_EXISTS",
    );

    const message = sessionMessages(MODE, sessionId);
    const proposal = (sender: Agent, proposalId: string) =>
      message(
        sender.id,
        "Proposal",
        encode(decision.ProposalPayloadSchema, { proposalId, option: proposalId }),
      );
    const vote = (value: string) =>
      message(
        fuzzer.id,
        "Vote",
        encode(decision.VotePayloadSchema, { proposalId: "p0", vote: value }),
      );
    await nack(
      "Proposal to an unknown session",
      { ...proposal(fuzzer, "p0"), sessionId: newSessionId() },
      "SESSION_NOT_FOUND",
    );
    await nack(
      "Proposal naming the wrong mode",
      { ...proposal(fuzzer, "p0"), mode: "macp.mode.task.v1" },
      "INVALID_ENVELOPE",
    );
    await nack(
      "garbage Proposal payload",
      { ...proposal(fuzzer, "p0"), payload: GARBAGE },
      "INVALID_ENVELOPE",
    );
    await check(
      "Proposal from an outsider",
      proposal(outsider, "p0"),
      { ok: false, code: "FORBIDDEN" },
      outsider,
    );
    await nack("Vote before any Proposal", vote("APPROVE"), "INVALID_ENVELOPE");
    await nack("Vote with an unknown value", vote("MAYBE"), "INVALID_ENVELOPE");
    await check("valid Proposal", proposal(fuzzer, "p1"), { ok: true });
    await nack("Proposal reusing proposal_id", proposal(fuzzer, "p1"), "INVALID_ENVELOPE");
    const commitment = (fields: Partial<CommitmentFields>) =>
      message(
        fuzzer.id,
        "Commitment",
        commitmentPayload({
          action: "decision.selected",
          outcomePositive: true,
          reason: "x",
          authorityScope: "fuzz",
          ...fields,
        }),
      );
    await nack(
      "Commitment echoing the wrong mode_version",
      commitment({ modeVersion: "2.0.0", reason: "wrong version" }),
      "INVALID_ENVELOPE",
    );
    await nack(
      "Commitment whose outcome contradicts its action",
      commitment({ outcomePositive: false }),
      "INVALID_ENVELOPE",
    );

    // Errors reported as gRPC statuses rather than acks.
    await expectStatus(log, "Send without an envelope", client.send({}, fuzzer.auth), [
      Code.InvalidArgument,
    ]);
    await expectStatus(
      log,
      "GetSession as an outsider",
      client.getSession({ sessionId }, outsider.auth),
      [Code.PermissionDenied],
    );
    await expectStatus(
      log,
      "GetSession of an unknown session",
      client.getSession({ sessionId: newSessionId() }, fuzzer.auth),
      [Code.NotFound],
    );
    await expectStatus(
      log,
      "CancelSession by a participant who is not the initiator",
      client.cancelSession({ sessionId, reason: "hostile" }, peer.auth),
      [Code.PermissionDenied],
    );
    await expectStatus(log, "ListSessions without credentials", client.listSessions({}), [
      Code.Unauthenticated,
    ]);
    // Beyond payload limit + 64 KiB the transport refuses the frame itself.
    await expectStatus(
      log,
      "frame above the transport limit",
      fuzzer.send(start(newSessionId(), new Uint8Array(limit + 70_000))),
      [Code.ResourceExhausted, Code.OutOfRange],
    );

    // None of that disturbed the session.
    expectSession(log, "GetSession after the fuzzing", await fuzzer.getSession(sessionId), {
      state: SessionState.OPEN,
      mode: MODE,
    });
    const cancelled = await client.cancelSession(
      { sessionId, reason: "fuzzing done" },
      fuzzer.auth,
    );
    expectAck(log, "CancelSession (initiator)", requireAck("CancelSession", cancelled.ack), {
      ok: true,
      state: SessionState.CANCELLED,
    });
    await nack("Proposal after cancellation", proposal(fuzzer, "p2"), "SESSION_NOT_OPEN");
  });
