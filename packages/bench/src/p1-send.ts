// P1: the in-process cost of one accepted message (Send of a decoded Envelope to its Ack).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createMemoryStore, createRuntime } from "@macp/core";
import {
  AckSchema,
  decision,
  SendRequestSchema,
  SendResponseSchema,
  SessionState,
} from "@macp/proto";
import {
  decisionLifecycle,
  envelope,
  evaluationPayload,
  median,
  sessionIdFor,
  UNLIMITED,
  VOTER,
} from "./traffic.js";

export interface P1Result {
  readonly sessions: number;
  readonly messagesPerRound: number;
  readonly rounds: number;
  readonly warmupRounds: number;
  /** Median µs per accepted message. */
  readonly microsPerMessage: number;
  readonly protobuf: { decodeRequest: number; decodePayload: number; encodeResponse: number };
}

const SESSIONS = 1000;
/**
 * Untimed rounds first: one round was not enough for the JIT and the heap to
 * settle (round-by-round traces showed rounds 1-2 at up to twice the steady cost).
 */
const WARMUP_ROUNDS = 3;
const ROUNDS = WARMUP_ROUNDS + 7;

export async function runP1(): Promise<P1Result> {
  const perRound: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    let now = 1_750_000_000_000;
    const runtime = createRuntime({
      clock: { now: () => now },
      store: createMemoryStore(),
      limits: UNLIMITED,
    });
    // Pre-build every envelope (P1 starts from a decoded Envelope), then interleave the
    // sessions' lifecycles so consecutive messages hit different sessions.
    const lifecycles = Array.from({ length: SESSIONS }, (_, i) =>
      decisionLifecycle(sessionIdFor(round * SESSIONS + i)),
    );
    const batch = [];
    for (let step = 0; step < (lifecycles[0]?.length ?? 0); step++) {
      for (const lifecycle of lifecycles) batch.push(lifecycle[step]!);
    }
    const started = process.hrtime.bigint();
    for (const { envelope: env, as } of batch) {
      const ack = await runtime.send(env, as);
      if (ack.isErr()) throw new Error(`refused: ${ack.error.code} ${ack.error.message}`);
    }
    const elapsed = Number(process.hrtime.bigint() - started) / 1000;
    now += 1;
    if (round >= WARMUP_ROUNDS) perRound.push(elapsed / batch.length);
  }
  return {
    sessions: SESSIONS,
    messagesPerRound: SESSIONS * decisionLifecycle(sessionIdFor(0)).length,
    rounds: ROUNDS - WARMUP_ROUNDS,
    warmupRounds: WARMUP_ROUNDS,
    microsPerMessage: median(perRound),
    protobuf: protobufCost(),
  };
}

/** What protobuf-es alone costs for the same messages, so the kernel's share stays visible. */
function protobufCost(): P1Result["protobuf"] {
  const request = toBinary(
    SendRequestSchema,
    create(SendRequestSchema, {
      envelope: envelope(
        "00000000-0000-4000-8000-000000000001",
        "Evaluation",
        "e1",
        VOTER,
        evaluationPayload,
      ),
    }),
  );
  const response = create(SendResponseSchema, {
    ack: create(AckSchema, {
      ok: true,
      messageId: "e1",
      sessionId: "00000000-0000-4000-8000-000000000001",
      acceptedAtUnixMs: 1_750_000_000_000n,
      sessionState: SessionState.OPEN,
    }),
  });
  return {
    decodeRequest: timePerOp(() => fromBinary(SendRequestSchema, request)),
    decodePayload: timePerOp(() => fromBinary(decision.EvaluationPayloadSchema, evaluationPayload)),
    encodeResponse: timePerOp(() => toBinary(SendResponseSchema, response)),
  };
}

function timePerOp(op: () => unknown): number {
  const iterations = 200_000;
  const samples: number[] = [];
  for (let s = 0; s < 5; s++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) op();
    samples.push(Number(process.hrtime.bigint() - started) / 1000 / iterations);
  }
  return median(samples.slice(1));
}
