// Decision-mode traffic shared by the in-process benchmarks.
import { create, toBinary } from "@bufbuild/protobuf";
import { createDevIdentity, type Identity, type MacpRuntime } from "@macp/core";
import {
  CommitmentPayloadSchema,
  decision,
  type Envelope,
  EnvelopeSchema,
  SessionStartPayloadSchema,
} from "@macp/proto";

export const DECISION = "macp.mode.decision.v1";
export const INITIATOR = "agent://orchestrator";
export const VOTER = "agent://evaluator";

export function sessionIdFor(index: number): string {
  return `00000000-0000-4000-8000-${index.toString(16).padStart(12, "0")}`;
}

const startPayload = toBinary(
  SessionStartPayloadSchema,
  create(SessionStartPayloadSchema, {
    intent: "benchmark",
    participants: [INITIATOR, VOTER],
    modeVersion: "1.0.0",
    configurationVersion: "cfg-1",
    ttlMs: 3_600_000n,
  }),
);

const proposalPayload = toBinary(
  decision.ProposalPayloadSchema,
  create(decision.ProposalPayloadSchema, { proposalId: "p1", option: "ship", rationale: "ready" }),
);

export const evaluationPayload = toBinary(
  decision.EvaluationPayloadSchema,
  create(decision.EvaluationPayloadSchema, {
    proposalId: "p1",
    recommendation: "APPROVE",
    confidence: 0.9,
    reason: "looks good",
  }),
);

export function envelope(
  sessionId: string,
  messageType: string,
  messageId: string,
  sender: string,
  payload: Uint8Array,
): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: DECISION,
    messageType,
    messageId,
    sessionId,
    sender,
    timestampUnixMs: 0n,
    payload,
  });
}

function payload<T extends Parameters<typeof create>[0]>(
  schema: T,
  init: Parameters<typeof create<T>>[1],
) {
  return toBinary(schema, create(schema, init));
}

/** Who takes part in a {@link decisionLifecycle}: an initiator and three evaluators. */
export interface LifecycleAgents {
  readonly initiator: string;
  readonly evaluators: readonly [string, string, string];
}

const defaultAgents: LifecycleAgents = {
  initiator: INITIATOR,
  evaluators: ["agent://e1", "agent://e2", "agent://e3"],
};

/**
 * One whole decision session: start, proposal, two evaluations, an objection,
 * three votes and the commitment (9 accepted messages).
 */
export function decisionLifecycle(
  sessionId: string,
  agents: LifecycleAgents = defaultAgents,
): { envelope: Envelope; as: Identity }[] {
  const { initiator, evaluators } = agents;
  const start = payload(SessionStartPayloadSchema, {
    intent: "benchmark",
    participants: [initiator, ...evaluators],
    modeVersion: "1.0.0",
    configurationVersion: "cfg-1",
    ttlMs: 3_600_000n,
  });
  const steps: [string, string, Uint8Array][] = [
    ["SessionStart", initiator, start],
    ["Proposal", initiator, proposalPayload],
    ["Evaluation", evaluators[0], evaluationPayload],
    ["Evaluation", evaluators[1], evaluationPayload],
    [
      "Objection",
      evaluators[2],
      payload(decision.ObjectionPayloadSchema, {
        proposalId: "p1",
        reason: "risk",
        severity: "low",
      }),
    ],
    ...evaluators.map((voter): [string, string, Uint8Array] => [
      "Vote",
      voter,
      payload(decision.VotePayloadSchema, { proposalId: "p1", vote: "APPROVE", reason: "ok" }),
    ]),
    commitmentStep(initiator),
  ];
  return toTraffic(sessionId, steps);
}

/** The twelve voters of {@link decisionHistory}. */
const panel = Array.from({ length: 12 }, (_, i) => `agent://panel-${i + 1}`);
const HISTORY_PROPOSALS = ["p1", "p2", "p3", "p4"];

/**
 * A whole decision session of exactly 100 accepted messages, with the mix a
 * real deliberation has: start, 4 proposals, 40 evaluations (10 panelists per
 * proposal), 8 objections, 46 votes spread over the proposals, then the
 * commitment. Messages of one kind alternate between proposals.
 */
export function decisionHistory(sessionId: string): { envelope: Envelope; as: Identity }[] {
  const start = payload(SessionStartPayloadSchema, {
    intent: "benchmark",
    participants: [INITIATOR, ...panel],
    modeVersion: "1.0.0",
    configurationVersion: "cfg-1",
    ttlMs: 3_600_000n,
  });
  const steps: [string, string, Uint8Array][] = [["SessionStart", INITIATOR, start]];
  for (const proposalId of HISTORY_PROPOSALS) {
    steps.push([
      "Proposal",
      INITIATOR,
      payload(decision.ProposalPayloadSchema, {
        proposalId,
        option: `option ${proposalId}`,
        rationale: "meets the requirements",
      }),
    ]);
  }
  for (let i = 0; i < 10; i++) {
    HISTORY_PROPOSALS.forEach((proposalId, p) => {
      steps.push([
        "Evaluation",
        panel[i] as string,
        payload(decision.EvaluationPayloadSchema, {
          proposalId,
          recommendation: (i + p) % 4 === 0 ? "REVIEW" : "APPROVE",
          confidence: 0.5 + ((i + p) % 5) / 10,
          reason: "looks good",
        }),
      ]);
    });
    if (i % 5 === 4) {
      for (const [o, proposalId] of HISTORY_PROPOSALS.entries()) {
        steps.push([
          "Objection",
          panel[10 + (o % 2)] as string,
          payload(decision.ObjectionPayloadSchema, {
            proposalId,
            reason: "cost is high",
            severity: o % 2 === 0 ? "low" : "medium",
          }),
        ]);
      }
    }
  }
  // 46 votes: every panelist on p1..p3 (36), ten of them on p4.
  for (let i = 0; i < 12; i++) {
    for (const proposalId of HISTORY_PROPOSALS) {
      if (proposalId === "p4" && i >= 10) continue;
      steps.push([
        "Vote",
        panel[i] as string,
        payload(decision.VotePayloadSchema, {
          proposalId,
          vote: (i + proposalId.length) % 3 === 0 ? "REJECT" : "APPROVE",
          reason: "ok",
        }),
      ]);
    }
  }
  steps.push(commitmentStep());
  return toTraffic(sessionId, steps);
}

/** The initiator's positive Commitment that ends every benchmark session. */
function commitmentStep(initiator = INITIATOR): [string, string, Uint8Array] {
  return [
    "Commitment",
    initiator,
    payload(CommitmentPayloadSchema, {
      commitmentId: "c1",
      action: "decision.selected",
      authorityScope: "release",
      reason: "approved",
      modeVersion: "1.0.0",
      configurationVersion: "cfg-1",
      outcomePositive: true,
    }),
  ];
}

/** Numbers the steps m0, m1, … and pairs each envelope with its sender's identity. */
function toTraffic(
  sessionId: string,
  steps: readonly [string, string, Uint8Array][],
): { envelope: Envelope; as: Identity }[] {
  return steps.map(([messageType, sender, body], i) => ({
    envelope: envelope(sessionId, messageType, `m${i}`, sender, body),
    as: identityOf(sender),
  }));
}

const identityCache = new Map<string, Identity>();
function identityOf(sender: string): Identity {
  let identity = identityCache.get(sender);
  if (!identity) {
    // Bounded: the soak gives every session agents of its own.
    if (identityCache.size >= 4096) identityCache.clear();
    identity = createDevIdentity(sender);
    identityCache.set(sender, identity);
  }
  return identity;
}

export const identities: { initiator: Identity; voter: Identity } = {
  initiator: createDevIdentity(INITIATOR),
  voter: createDevIdentity(VOTER),
};

/** Starts `count` decision sessions, each with one proposal, so Evaluations are accepted. */
export async function openSessions(
  runtime: MacpRuntime,
  count: number,
  offset = 0,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = sessionIdFor(offset + i);
    const start = await runtime.send(
      envelope(id, "SessionStart", `s-${id}`, INITIATOR, startPayload),
      identities.initiator,
    );
    if (start.isErr()) throw new Error(`SessionStart refused: ${start.error.code}`);
    const proposal = await runtime.send(
      envelope(id, "Proposal", `p-${id}`, INITIATOR, proposalPayload),
      identities.initiator,
    );
    if (proposal.isErr()) throw new Error(`Proposal refused: ${proposal.error.code}`);
    ids.push(id);
  }
  return ids;
}

/** Starts `count` sessions with only their SessionStart (idle sessions). */
export async function startIdleSessions(runtime: MacpRuntime, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = sessionIdFor(i);
    const start = await runtime.send(
      envelope(id, "SessionStart", "s", INITIATOR, startPayload),
      identities.initiator,
    );
    if (start.isErr()) throw new Error(`SessionStart refused: ${start.error.code}`);
  }
}

/** Limits high enough that the benchmarks measure the kernel, not the rate limiter. */
export const UNLIMITED = {
  sessionStartsPerMinute: Number.POSITIVE_INFINITY,
  messagesPerMinute: Number.POSITIVE_INFINITY,
};

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}
