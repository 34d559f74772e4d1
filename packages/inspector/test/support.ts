// Shared plumbing of the inspector tests: a runtime served in memory (router
// transport) with the MACP and inspector routes, dev-mode callers, and
// decision-mode envelopes.

import { randomUUID } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { type CallOptions, createClient, createRouterTransport } from "@connectrpc/connect";
import { createMacpRoutes } from "@macp/connect";
import { type Caller, createDevIdentity, createIdentity, createRuntime } from "@macp/core";
import { createInspectorRoutes, createRefusalLog, type RefusalLog } from "@macp/inspector";
import {
  CommitmentPayloadSchema,
  decision,
  type Envelope,
  EnvelopeSchema,
  inspector,
  MACPRuntimeService,
  SessionStartPayloadSchema,
} from "@macp/proto";

export const DECISION = "macp.mode.decision.v1";

/** Dev mode, except that the bearer "auditor" is an observer. */
export function authenticate(headers: Headers): Caller {
  const value = headers.get("authorization");
  if (value === null || !value.startsWith("Bearer ")) return { unauthenticated: "no bearer" };
  const sender = value.slice("Bearer ".length);
  return sender === "auditor"
    ? createIdentity({ sender, isObserver: true })
    : createDevIdentity(sender);
}

export function as(agent: string, signal?: AbortSignal): CallOptions {
  return { headers: { authorization: `Bearer ${agent}` }, ...(signal ? { signal } : {}) };
}

export interface Served {
  readonly macp: ReturnType<typeof createClient<typeof MACPRuntimeService>>;
  readonly inspector: ReturnType<typeof createClient<typeof inspector.InspectorService>>;
  readonly refusals: RefusalLog;
}

export function serve(options: { streamBuffer?: number } = {}): Served {
  const clock = { now: () => Date.now() };
  const refusals = createRefusalLog({ clock });
  const runtime = createRuntime({ clock, observer: refusals.observer });
  const transport = createRouterTransport((router) => {
    createMacpRoutes(runtime, { authenticate, clock })(router);
    createInspectorRoutes(runtime, {
      authenticate,
      refusals,
      clock,
      ...(options.streamBuffer === undefined ? {} : { streamBuffer: options.streamBuffer }),
    })(router);
  });
  return {
    macp: createClient(MACPRuntimeService, transport),
    inspector: createClient(inspector.InspectorService, transport),
    refusals,
  };
}

export function envelope(
  sessionId: string,
  sender: string,
  messageType: string,
  payload: Uint8Array,
): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: "1.0",
    mode: DECISION,
    messageType,
    messageId: randomUUID(),
    sessionId,
    sender,
    timestampUnixMs: BigInt(Date.now()),
    payload,
  });
}

export function start(
  sessionId: string,
  initiator: string,
  participants: string[],
  policyVersion = "",
): Envelope {
  return envelope(
    sessionId,
    initiator,
    "SessionStart",
    toBinary(
      SessionStartPayloadSchema,
      create(SessionStartPayloadSchema, {
        participants,
        modeVersion: "1.0.0",
        configurationVersion: "config.default",
        policyVersion,
        ttlMs: 60_000n,
      }),
    ),
  );
}

export function proposal(
  sessionId: string,
  sender: string,
  option: string,
  proposalId = "p1",
): Envelope {
  return envelope(
    sessionId,
    sender,
    "Proposal",
    toBinary(
      decision.ProposalPayloadSchema,
      create(decision.ProposalPayloadSchema, { proposalId, option, rationale: "cheapest" }),
    ),
  );
}

export function commitment(sessionId: string, sender: string, policyVersion: string): Envelope {
  return envelope(
    sessionId,
    sender,
    "Commitment",
    toBinary(
      CommitmentPayloadSchema,
      create(CommitmentPayloadSchema, {
        commitmentId: randomUUID(),
        action: "decision.selected",
        authorityScope: "team",
        reason: "p1 won",
        modeVersion: "1.0.0",
        configurationVersion: "config.default",
        policyVersion,
        outcomePositive: true,
      }),
    ),
  );
}

export function newSessionId(): string {
  return randomUUID();
}

/** Reads a stream one message at a time. */
export class Reader<T> {
  private readonly iterator: AsyncIterator<T>;
  constructor(stream: AsyncIterable<T>) {
    this.iterator = stream[Symbol.asyncIterator]();
  }
  async next(): Promise<T> {
    const result = await this.iterator.next();
    if (result.done === true) throw new Error("the stream ended");
    return result.value;
  }
  /** Reads until `match` holds, returning everything read. */
  async until(match: (item: T) => boolean): Promise<T[]> {
    const read: T[] = [];
    for (;;) {
      const item = await this.next();
      read.push(item);
      if (match(item)) return read;
    }
  }
}
