// A page on another origin than the runtime: it runs one decision session
// with the browser's own fetch, over gRPC-Web or Connect, and follows it with
// a server stream (WatchSessions). The browser test calls runDecision().

import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import {
  CommitmentPayloadSchema,
  decision,
  EnvelopeSchema,
  MACPRuntimeService,
  SessionLifecycleEvent_EventType,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";

const MODE = "macp.mode.decision.v1";

export interface DecisionRun {
  readonly sessionId: string;
  /** "<message type> <ok|code>" per Send, in order. */
  readonly acks: string[];
  /** The session's state from GetSession at the end. */
  readonly state: string;
  /** Lifecycle events of the session seen on WatchSessions. */
  readonly events: string[];
}

async function runDecision(
  baseUrl: string,
  protocol: "connect" | "grpc-web",
): Promise<DecisionRun> {
  const transport =
    protocol === "grpc-web"
      ? createGrpcWebTransport({ baseUrl })
      : createConnectTransport({ baseUrl });
  const client = createClient(MACPRuntimeService, transport);
  const as = (agent: string, signal?: AbortSignal) => ({
    headers: { authorization: `Bearer ${agent}` },
    ...(signal === undefined ? {} : { signal }),
  });
  const sessionId = crypto.randomUUID();
  const payload = <Desc extends DescMessage>(schema: Desc, fields: MessageInitShape<Desc>) =>
    toBinary(schema, create(schema, fields));
  const acks: string[] = [];
  const send = async (sender: string, messageType: string, bytes: Uint8Array): Promise<void> => {
    const envelope = create(EnvelopeSchema, {
      macpVersion: "1.0",
      mode: MODE,
      messageType,
      messageId: crypto.randomUUID(),
      sessionId,
      sender,
      timestampUnixMs: BigInt(Date.now()),
      payload: bytes,
    });
    const { ack } = await client.send({ envelope }, as(sender));
    acks.push(`${messageType} ${ack?.ok === true ? "ok" : (ack?.error?.code ?? "?")}`);
  };

  await client.initialize({ supportedProtocolVersions: ["1.0"] });
  // Follow lifecycle events over a server stream while the session runs.
  const watching = new AbortController();
  const events: string[] = [];
  const watched = (async () => {
    for await (const { event } of client.watchSessions({}, as("lead", watching.signal))) {
      if (event?.session?.sessionId !== sessionId) continue;
      events.push(SessionLifecycleEvent_EventType[event.eventType]);
      if (event.eventType === SessionLifecycleEvent_EventType.RESOLVED) return;
    }
  })();

  await send(
    "lead",
    "SessionStart",
    payload(SessionStartPayloadSchema, {
      intent: "pick a region",
      participants: ["alice", "bob"],
      modeVersion: "1.0.0",
      configurationVersion: "config.default",
      ttlMs: 60_000n,
    }),
  );
  await send(
    "alice",
    "Proposal",
    payload(decision.ProposalPayloadSchema, {
      proposalId: "p1",
      option: "eu-west",
      rationale: "latency",
    }),
  );
  for (const voter of ["alice", "bob"]) {
    await send(
      voter,
      "Vote",
      payload(decision.VotePayloadSchema, { proposalId: "p1", vote: "APPROVE" }),
    );
  }
  await send(
    "lead",
    "Commitment",
    payload(CommitmentPayloadSchema, {
      commitmentId: crypto.randomUUID(),
      action: "decision.selected",
      authorityScope: "team",
      reason: "unanimous",
      modeVersion: "1.0.0",
      configurationVersion: "config.default",
      policyVersion: "policy.default",
      outcomePositive: true,
    }),
  );
  await watched;
  watching.abort();
  const { metadata } = await client.getSession({ sessionId }, as("lead"));
  return { sessionId, acks, state: SessionState[metadata?.state ?? 0] ?? "?", events };
}

Object.assign(globalThis, { runDecision });
