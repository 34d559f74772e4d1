// Three agents that reach a decision: a proposer and voters. They know nothing
// about tests: each takes a Connect client of MACPRuntimeService, so the same
// code runs against a server (createGrpcTransport) or, in a unit test, over
// @macp/in-process with a simulated clock.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import {
  type Ack,
  CommitmentPayloadSchema,
  decision,
  type Envelope,
  EnvelopeSchema,
  type MACPRuntimeService,
  type SessionMetadata,
  SessionStartPayloadSchema,
  SessionState,
  type StreamSessionRequest,
  StreamSessionRequestSchema,
  type StreamSessionResponse,
} from "@macp/proto";

const MODE = "macp.mode.decision.v1";
const MODE_VERSION = "1.0.0";
const CONFIGURATION_VERSION = "release-review/1";

export type Ballot = "APPROVE" | "REJECT" | "ABSTAIN";

/** What an agent needs besides its own logic. */
export interface Agent {
  readonly client: Client<typeof MACPRuntimeService>;
  /** The agent's id: the sender its credentials authenticate as. */
  readonly name: string;
  /** The time for envelope timestamps: `Date.now` in production, the simulated clock in tests. */
  readonly now: () => number;
}

export interface DecisionRequest {
  readonly sessionId: string;
  readonly voters: readonly string[];
  /** What is being decided, e.g. "ship 1.4 on Friday". */
  readonly option: string;
  readonly ttlMs: number;
}

export type DecisionOutcome =
  | {
      readonly kind: "committed";
      readonly action: "decision.selected" | "decision.rejected";
      readonly votes: Readonly<Record<string, string>>;
      readonly ack: Ack;
    }
  | {
      /** The session ended before every voter voted (TTL, cancellation). */
      readonly kind: "ended";
      readonly state: SessionState;
      readonly votes: Readonly<Record<string, string>>;
    };

/** A decision whose session is open and whose proposal was accepted. */
export interface OpenDecision {
  readonly sessionId: string;
  /** Waits for every voter, then commits; or reports that the session ended first. */
  conclude(): Promise<DecisionOutcome>;
}

const PROPOSAL_ID = "p1";
const TERMINAL = new Set([SessionState.RESOLVED, SessionState.EXPIRED, SessionState.CANCELLED]);

/**
 * The proposer: starts a decision session with the voters as participants,
 * proposes, and returns once the runtime has accepted both (their echo on the
 * session stream). Votes then arrive on that same stream.
 */
export async function openDecision(agent: Agent, request: DecisionRequest): Promise<OpenDecision> {
  const stop = new AbortController();
  // Expiry and cancellation are not session envelopes, so the stream never
  // shows them; the lifecycle watch does.
  const ended = sessionEnd(agent.client, request.sessionId, stop.signal);
  const frames = createWritableIterable<StreamSessionRequest>();
  const stream = agent.client
    .streamSession(frames, { signal: stop.signal })
    [Symbol.asyncIterator]();
  const votes: Record<string, string> = {};
  let sent = 0;

  const envelope = (messageType: string, payload: Uint8Array): Envelope =>
    create(EnvelopeSchema, {
      macpVersion: "1.0",
      mode: MODE,
      messageType,
      messageId: `${agent.name}/${request.sessionId}/${++sent}`,
      sessionId: request.sessionId,
      sender: agent.name,
      timestampUnixMs: BigInt(agent.now()),
      payload,
    });

  const take = (response: StreamSessionResponse): Envelope | undefined => {
    const { response: frame } = response;
    if (frame.case === "error") throw new Error(`${frame.value.code}: ${frame.value.message}`);
    if (frame.case !== "envelope") return undefined;
    if (frame.value.messageType === "Vote") {
      const vote = fromBinary(decision.VotePayloadSchema, frame.value.payload);
      votes[frame.value.sender] = vote.vote;
    }
    return frame.value;
  };

  // Sends on the stream and reads until the runtime echoes it back as accepted.
  const submit = async (messageType: string, payload: Uint8Array): Promise<void> => {
    const outgoing = envelope(messageType, payload);
    await frames.write(create(StreamSessionRequestSchema, { envelope: outgoing }));
    for (;;) {
      const next = await stream.next();
      if (next.done === true) throw new Error(`the stream ended before ${messageType} was echoed`);
      if (take(next.value)?.messageId === outgoing.messageId) return;
    }
  };

  try {
    await submit(
      "SessionStart",
      toBinary(
        SessionStartPayloadSchema,
        create(SessionStartPayloadSchema, {
          intent: `decide: ${request.option}`,
          participants: [agent.name, ...request.voters],
          modeVersion: MODE_VERSION,
          configurationVersion: CONFIGURATION_VERSION,
          ttlMs: BigInt(request.ttlMs),
        }),
      ),
    );
    await submit(
      "Proposal",
      toBinary(
        decision.ProposalPayloadSchema,
        create(decision.ProposalPayloadSchema, {
          proposalId: PROPOSAL_ID,
          option: request.option,
          rationale: "requested by the release train",
        }),
      ),
    );
  } catch (error) {
    // Refused: end both calls rather than leave them open.
    stop.abort();
    throw error;
  }

  return {
    sessionId: request.sessionId,
    async conclude() {
      while (request.voters.some((voter) => votes[voter] === undefined)) {
        const next = stream.next();
        const first = await Promise.race([next, ended]);
        if (typeof first === "number") {
          stop.abort();
          await next.catch(() => {});
          return { kind: "ended", state: first, votes: { ...votes } };
        }
        if (first.done === true) throw new Error("the session stream ended unexpectedly");
        take(first.value);
      }
      const approvals = Object.values(votes).filter((vote) => vote === "APPROVE").length;
      const approved = approvals * 2 > request.voters.length;
      const action = approved ? "decision.selected" : "decision.rejected";
      // Committed with unary Send: its Ack says whether the commitment landed,
      // which a stream (no per-message acks) does not.
      const { ack } = await agent.client.send({
        envelope: envelope(
          "Commitment",
          toBinary(
            CommitmentPayloadSchema,
            create(CommitmentPayloadSchema, {
              commitmentId: `${request.sessionId}/commitment`,
              action,
              authorityScope: "release",
              reason: `${approvals} of ${request.voters.length} approved`,
              modeVersion: MODE_VERSION,
              configurationVersion: CONFIGURATION_VERSION,
              outcomePositive: approved,
            }),
          ),
        ),
      });
      if (ack === undefined || !ack.ok) {
        throw new Error(`commitment refused: ${ack?.error?.code} ${ack?.error?.message}`);
      }
      // Half-close, then read what the runtime still flushes (our commitment's echo).
      frames.close();
      for (let next = await stream.next(); next.done !== true; next = await stream.next()) {
        take(next.value);
      }
      stop.abort();
      return { kind: "committed", action, votes: { ...votes }, ack };
    },
  };
}

/** Resolves with the session's terminal state once it ends; never, if `signal` fires first. */
function sessionEnd(
  client: Agent["client"],
  sessionId: string,
  signal: AbortSignal,
): Promise<SessionState> {
  return new Promise((resolve) => {
    void (async () => {
      try {
        for await (const { event } of client.watchSessions({}, { signal })) {
          const session: SessionMetadata | undefined = event?.session;
          if (session?.sessionId === sessionId && TERMINAL.has(session.state)) {
            resolve(session.state);
            return;
          }
        }
      } catch {
        // Cancelled by `signal`: the proposer stopped caring.
      }
    })();
  });
}

export interface VoterOptions {
  /** How this voter judges a proposal. */
  readonly judge: (proposal: decision.ProposalPayload) => Ballot;
  /** Stops waiting for an invitation or a commitment. */
  readonly signal?: AbortSignal;
}

export interface VoterReport {
  readonly sessionId: string;
  readonly ballot: Ballot;
  /** The committed action, e.g. "decision.selected". */
  readonly action: string;
}

/**
 * A voter: waits to be invited (a decision session listing it as a
 * participant), follows that session's stream from the start, votes on the
 * proposal on the same stream, and returns once the decision is committed.
 */
export async function runVoter(agent: Agent, options: VoterOptions): Promise<VoterReport> {
  const sessionId = await invitation(agent, options.signal);
  const frames = createWritableIterable<StreamSessionRequest>();
  const stream = agent.client.streamSession(
    frames,
    options.signal === undefined ? {} : { signal: options.signal },
  );
  // A failed write fails the call too, and the loop below reports that; the
  // write's own rejection would only be a duplicate.
  const write = (frame: StreamSessionRequest) => frames.write(frame).catch(() => {});
  void write(create(StreamSessionRequestSchema, { subscribeSessionId: sessionId }));
  let ballot: Ballot | undefined;
  let action: string | undefined;
  for await (const { response } of stream) {
    if (response.case === "error") {
      throw new Error(`${agent.name}: ${response.value.code}: ${response.value.message}`);
    }
    if (response.case !== "envelope") continue;
    const envelope = response.value;
    if (envelope.messageType === "Proposal" && ballot === undefined) {
      const proposal = fromBinary(decision.ProposalPayloadSchema, envelope.payload);
      ballot = options.judge(proposal);
      void write(
        create(StreamSessionRequestSchema, {
          envelope: create(EnvelopeSchema, {
            macpVersion: "1.0",
            mode: MODE,
            messageType: "Vote",
            messageId: `${agent.name}/${sessionId}/vote`,
            sessionId,
            sender: agent.name,
            timestampUnixMs: BigInt(agent.now()),
            payload: toBinary(
              decision.VotePayloadSchema,
              create(decision.VotePayloadSchema, {
                proposalId: proposal.proposalId,
                vote: ballot,
                reason: `${agent.name} says ${ballot}`,
              }),
            ),
          }),
        }),
      );
    }
    if (envelope.messageType === "Commitment") {
      action = fromBinary(CommitmentPayloadSchema, envelope.payload).action;
      // Half-close: the runtime ends the stream once it has flushed.
      frames.close();
    }
  }
  if (ballot === undefined || action === undefined) {
    throw new Error(`${agent.name}: the stream ended before the decision was committed`);
  }
  return { sessionId, ballot, action };
}

/** The first open decision session that lists this agent as a participant but was not started by it. */
async function invitation(agent: Agent, signal: AbortSignal | undefined): Promise<string> {
  const stop = new AbortController();
  const watch = signal === undefined ? stop.signal : AbortSignal.any([signal, stop.signal]);
  try {
    for await (const { event } of agent.client.watchSessions({}, { signal: watch })) {
      const session = event?.session;
      if (
        session?.mode === MODE &&
        session.state === SessionState.OPEN &&
        session.initiator !== agent.name &&
        session.participants.includes(agent.name)
      ) {
        return session.sessionId;
      }
    }
  } finally {
    stop.abort();
  }
  throw new Error(`${agent.name}: the session watch ended without an invitation`);
}

/** A one-off vote with unary Send, for an agent that does not follow the stream. */
export async function castVote(
  agent: Agent,
  sessionId: string,
  ballot: Ballot,
): Promise<Ack | undefined> {
  const { ack } = await agent.client.send({
    envelope: {
      macpVersion: "1.0",
      mode: MODE,
      messageType: "Vote",
      messageId: `${agent.name}/${sessionId}/vote`,
      sessionId,
      sender: agent.name,
      timestampUnixMs: BigInt(agent.now()),
      payload: toBinary(
        decision.VotePayloadSchema,
        create(decision.VotePayloadSchema, { proposalId: PROPOSAL_ID, vote: ballot }),
      ),
    },
  });
  return ack;
}
