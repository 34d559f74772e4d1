// What the P2 processes share: the Send method path, the messages the load
// generator sends, the fixed Ack the echo servers answer with, and the IPC
// messages between the orchestrator and its children.

import { create, toBinary } from "@bufbuild/protobuf";
import {
  decision,
  EnvelopeSchema,
  SendRequestSchema,
  SendResponseSchema,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";

export const SEND_PATH = "/macp.v1.MACPRuntimeService/Send";
export const DECISION_MODE = "macp.mode.decision.v1";

/** The answer of both echo servers: what the runtime answers for an accepted message. */
export const FIXED_SEND_RESPONSE = create(SendResponseSchema, {
  ack: {
    ok: true,
    messageId: "echo",
    sessionId: "echo",
    acceptedAtUnixMs: 1n,
    sessionState: SessionState.OPEN,
  },
});
export const FIXED_SEND_RESPONSE_BYTES = toBinary(SendResponseSchema, FIXED_SEND_RESPONSE);

export function senderId(caller: number): string {
  return `agent://bench-${caller}`;
}

function envelopeBytes(fields: {
  messageType: string;
  messageId: string;
  sessionId: string;
  sender: string;
  payload: Uint8Array;
}): Uint8Array {
  return toBinary(
    SendRequestSchema,
    create(SendRequestSchema, {
      envelope: create(EnvelopeSchema, {
        macpVersion: "1.0",
        mode: DECISION_MODE,
        timestampUnixMs: BigInt(Date.now()),
        ...fields,
      }),
    }),
  );
}

/** A SendRequest starting a decision session every caller participates in. */
export function sessionStartRequest(sessionId: string, callers: number): Uint8Array {
  const participants = Array.from({ length: callers }, (_, caller) => senderId(caller));
  return envelopeBytes({
    messageType: "SessionStart",
    messageId: `start-${sessionId}`,
    sessionId,
    sender: senderId(0),
    payload: toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        intent: "P2 throughput",
        participants,
        modeVersion: "1.0.0",
        configurationVersion: "config.default",
        policyVersion: "policy.default",
        ttlMs: 3_600_000n,
      }),
    ),
  });
}

/**
 * The k-th SendRequest of a caller. Calls come in pairs on one session: a
 * Proposal, then an Evaluation of that proposal, so every message is valid
 * decision-mode traffic (no Vote, which would close the evaluation phase).
 */
export function trafficRequest(
  caller: number,
  k: number,
  sessionIds: readonly string[],
): Uint8Array {
  const pair = Math.floor(k / 2);
  const sessionId = sessionIds[(caller + pair) % sessionIds.length] ?? "";
  const proposalId = `p${caller}-${pair}`;
  const sender = senderId(caller);
  if (k % 2 === 0) {
    return envelopeBytes({
      messageType: "Proposal",
      messageId: `m${caller}-${k}`,
      sessionId,
      sender,
      payload: toBinary(
        decision.ProposalPayloadSchema,
        create(decision.ProposalPayloadSchema, {
          proposalId,
          option: `option-${pair}`,
          rationale: "throughput benchmark",
        }),
      ),
    });
  }
  return envelopeBytes({
    messageType: "Evaluation",
    messageId: `m${caller}-${k}`,
    sessionId,
    sender,
    payload: toBinary(
      decision.EvaluationPayloadSchema,
      create(decision.EvaluationPayloadSchema, {
        proposalId,
        recommendation: "APPROVE",
        confidence: 0.8,
        reason: "looks fine",
      }),
    ),
  });
}

/** Settings of one load-generator process. */
export interface LoadConfig {
  /** host:port of the server. */
  readonly address: string;
  /** Concurrent callers, each with its own sender identity. */
  readonly callers: number;
  /** HTTP/2 connections the callers are spread over. */
  readonly connections: number;
  /** Decision sessions to create before the run and spread traffic over. */
  readonly sessions: number;
  /** Create the sessions, then wait for "resume" before any traffic. Default false. */
  readonly startPaused?: boolean;
}

export interface LoadResult {
  readonly calls: number;
  readonly accepted: number;
  readonly refused: number;
  readonly failed: number;
  readonly elapsedMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The first NACK code or transport error seen, for diagnosis. */
  readonly firstProblem: string | undefined;
}

export type ToLoadGenerator =
  | { readonly type: "config"; readonly config: LoadConfig }
  | { readonly type: "begin" }
  /** Finish the calls in flight, answer "paused", send nothing more until "resume". */
  | { readonly type: "pause" }
  | { readonly type: "resume" }
  | { readonly type: "end" }
  | { readonly type: "stop" };

export type FromLoadGenerator =
  | { readonly type: "ready" }
  | { readonly type: "paused" }
  | { readonly type: "result"; readonly result: LoadResult }
  | { readonly type: "error"; readonly message: string };

export type ToEchoServer = { readonly type: "cpu" } | { readonly type: "stop" };

export type FromEchoServer =
  | { readonly type: "listening"; readonly port: number }
  | { readonly type: "cpu"; readonly userMicros: number; readonly systemMicros: number };
