// Shared plumbing of the example clients: one Connect gRPC client per run,
// one dev-mode bearer token per agent, envelope builders and the checks that
// turn "the runtime answered differently than the protocol says" into a failure.

import { randomUUID } from "node:crypto";
import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import {
  type CallOptions,
  type Client,
  Code,
  ConnectError,
  createClient,
} from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  type Ack,
  CommitmentPayloadSchema,
  type Envelope,
  EnvelopeSchema,
  MACPRuntimeService,
  type SessionMetadata,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";

/** Where the examples connect unless told otherwise. */
export const DEFAULT_ENDPOINT = "http://127.0.0.1:50051";

/** The versions every example session binds (the SDK defaults). */
export const MODE_VERSION = "1.0.0";
export const CONFIGURATION_VERSION = "config.default";
export const POLICY_VERSION = "policy.default";

export interface ExampleOptions {
  /** Base URL of the runtime. Default: `MACP_ENDPOINT`, else {@link DEFAULT_ENDPOINT}. */
  readonly endpoint?: string;
  /** Receives one line per step. Default: `console.log`. */
  readonly log?: (line: string) => void;
}

/** An example client: resolves when every step went as expected, rejects otherwise. */
export type Example = (options?: ExampleOptions) => Promise<void>;

/** Thrown when the runtime's answer differs from what the protocol prescribes. */
export class ExampleFailure extends Error {
  constructor(step: string, detail: string) {
    super(`[${step}] ${detail}`);
    this.name = "ExampleFailure";
  }
}

export type MacpClient = Client<typeof MACPRuntimeService>;

/** One agent's view of the runtime: the shared client plus its own credential. */
export interface Agent {
  /** The dev-mode identity; the runtime derives `sender` from it. */
  readonly id: string;
  readonly client: MacpClient;
  /** Call options carrying this agent's bearer token. */
  readonly auth: CallOptions;
  send(envelope: Envelope): Promise<Ack>;
  getSession(sessionId: string): Promise<SessionMetadata>;
}

/** A connection to the runtime shared by all agents of one example run. */
export interface ExampleConnection {
  readonly endpoint: string;
  readonly client: MacpClient;
  readonly log: (line: string) => void;
  agent(id: string): Agent;
  /** Closes the HTTP/2 connection so the process can exit promptly. */
  close(): void;
}

export function resolveEndpoint(options: ExampleOptions | undefined): string {
  return options?.endpoint ?? process.env.MACP_ENDPOINT ?? DEFAULT_ENDPOINT;
}

export function connect(options?: ExampleOptions): ExampleConnection {
  const endpoint = resolveEndpoint(options);
  const log = options?.log ?? ((line: string) => console.log(line));
  // An explicit session manager lets close() tear the connection down; the
  // transport would otherwise keep it for its idle timeout.
  const sessionManager = new Http2SessionManager(endpoint);
  const transport = createGrpcTransport({ baseUrl: endpoint, sessionManager });
  const client = createClient(MACPRuntimeService, transport);
  return {
    endpoint,
    client,
    log,
    agent(id) {
      const auth: CallOptions = { headers: { authorization: `Bearer ${id}` } };
      return {
        id,
        client,
        auth,
        async send(envelope) {
          const response = await client.send({ envelope }, auth);
          return requireAck(envelope.messageType, response.ack);
        },
        async getSession(sessionId) {
          const response = await client.getSession({ sessionId }, auth);
          if (response.metadata === undefined) {
            throw new ExampleFailure("GetSession", "the runtime answered without metadata");
          }
          return response.metadata;
        },
      };
    },
    close() {
      sessionManager.abort();
    },
  };
}

/** Runs `body` with a fresh connection and always closes it. */
export async function withConnection(
  options: ExampleOptions | undefined,
  body: (connection: ExampleConnection) => Promise<void>,
): Promise<void> {
  const connection = connect(options);
  try {
    await body(connection);
  } finally {
    connection.close();
  }
}

export function newSessionId(): string {
  return randomUUID();
}

export function newMessageId(): string {
  return randomUUID();
}

export interface EnvelopeFields {
  readonly mode: string;
  readonly messageType: string;
  readonly sessionId: string;
  readonly sender: string;
  readonly payload?: Uint8Array;
  readonly messageId?: string;
  readonly macpVersion?: string;
}

export function envelope(fields: EnvelopeFields): Envelope {
  return create(EnvelopeSchema, {
    macpVersion: fields.macpVersion ?? "1.0",
    mode: fields.mode,
    messageType: fields.messageType,
    messageId: fields.messageId ?? newMessageId(),
    sessionId: fields.sessionId,
    sender: fields.sender,
    timestampUnixMs: BigInt(Date.now()),
    payload: fields.payload ?? new Uint8Array(0),
  });
}

/** Encodes a mode payload from its schema and plain field values. */
export function encode<Desc extends DescMessage>(
  schema: Desc,
  fields: MessageInitShape<Desc>,
): Uint8Array {
  return toBinary(schema, create(schema, fields));
}

export interface SessionStartFields {
  readonly intent: string;
  readonly participants: readonly string[];
  /** Default 60 s. */
  readonly ttlMs?: number;
  /** Default `policy.default`. */
  readonly policyVersion?: string;
  /** Default {@link MODE_VERSION}; the fuzzer sends an unknown one. */
  readonly modeVersion?: string;
}

export function sessionStartPayload(fields: SessionStartFields): Uint8Array {
  return encode(SessionStartPayloadSchema, {
    intent: fields.intent,
    participants: [...fields.participants],
    modeVersion: fields.modeVersion ?? MODE_VERSION,
    configurationVersion: CONFIGURATION_VERSION,
    policyVersion: fields.policyVersion ?? POLICY_VERSION,
    ttlMs: BigInt(fields.ttlMs ?? 60_000),
  });
}

export interface CommitmentFields {
  readonly action: string;
  readonly outcomePositive: boolean;
  readonly reason: string;
  readonly authorityScope?: string;
  /** Default {@link MODE_VERSION}; the fuzzer echoes a wrong one. */
  readonly modeVersion?: string;
}

/** A Commitment payload that echoes the versions every example session binds. */
export function commitmentPayload(fields: CommitmentFields): Uint8Array {
  return encode(CommitmentPayloadSchema, {
    commitmentId: newMessageId(),
    action: fields.action,
    authorityScope: fields.authorityScope ?? "example",
    reason: fields.reason,
    modeVersion: fields.modeVersion ?? MODE_VERSION,
    configurationVersion: CONFIGURATION_VERSION,
    policyVersion: POLICY_VERSION,
    outcomePositive: fields.outcomePositive,
  });
}

export interface ExpectedAck {
  readonly ok: boolean;
  /** Required error code when `ok` is false. */
  readonly code?: string;
  readonly state?: SessionState;
  /** Default false: an unexpected duplicate means the example reused an id by mistake. */
  readonly duplicate?: boolean;
}

/** The Ack of a response that must carry one. */
export function requireAck(step: string, ack: Ack | undefined): Ack {
  if (ack === undefined) {
    throw new ExampleFailure(step, "the runtime answered without an Ack");
  }
  return ack;
}

export function stateName(state: SessionState): string {
  return SessionState[state] ?? String(state);
}

/** Prints the ack the way every example does and fails on any difference from `expected`. */
export function expectAck(
  log: (line: string) => void,
  step: string,
  ack: Ack,
  expected: ExpectedAck,
): Ack {
  const code = ack.error?.code ?? "";
  log(
    `[${step}] ok=${ack.ok} duplicate=${ack.duplicate} state=${stateName(ack.sessionState)} error='${code}'`,
  );
  if (ack.ok !== expected.ok) {
    const why = ack.ok ? "accepted" : `refused with ${code}: ${ack.error?.message ?? ""}`;
    throw new ExampleFailure(step, `expected ok=${expected.ok}, but the runtime ${why}`);
  }
  if (expected.code !== undefined && code !== expected.code) {
    throw new ExampleFailure(step, `expected error ${expected.code}, got '${code}'`);
  }
  if (expected.state !== undefined && ack.sessionState !== expected.state) {
    throw new ExampleFailure(
      step,
      `expected state ${stateName(expected.state)}, got ${stateName(ack.sessionState)}`,
    );
  }
  if (ack.duplicate !== (expected.duplicate ?? false)) {
    throw new ExampleFailure(step, `expected duplicate=${expected.duplicate ?? false}`);
  }
  return ack;
}

/** Checks that a call fails with the given gRPC status instead of answering. */
export async function expectStatus(
  log: (line: string) => void,
  step: string,
  call: Promise<unknown>,
  expected: readonly Code[],
): Promise<ConnectError> {
  try {
    await call;
  } catch (cause) {
    const error = ConnectError.from(cause);
    log(`[${step}] status=${Code[error.code]} message='${error.rawMessage}'`);
    if (!expected.includes(error.code)) {
      throw new ExampleFailure(
        step,
        `expected status ${expected.map((c) => Code[c]).join(" or ")}, got ${Code[error.code]}: ${error.rawMessage}`,
      );
    }
    return error;
  }
  throw new ExampleFailure(
    step,
    `expected status ${expected.map((c) => Code[c]).join(" or ")}, but the call succeeded`,
  );
}

/** Fails unless the session metadata shows `state` (and prints it). */
export function expectSession(
  log: (line: string) => void,
  step: string,
  metadata: SessionMetadata,
  expected: { readonly state: SessionState; readonly mode: string },
): void {
  log(
    `[${step}] session=${metadata.sessionId} mode=${metadata.mode} state=${stateName(metadata.state)} initiator=${metadata.initiator} participants=${metadata.participants.join(",")}`,
  );
  if (metadata.state !== expected.state) {
    throw new ExampleFailure(
      step,
      `expected state ${stateName(expected.state)}, got ${stateName(metadata.state)}`,
    );
  }
  if (metadata.mode !== expected.mode) {
    throw new ExampleFailure(step, `expected mode ${expected.mode}, got ${metadata.mode}`);
  }
}

export { Code, SessionState };

/** A passive StreamSession subscription that collects what it receives. */
export interface Subscription {
  /** Half-closes the request side; the runtime then drains and ends the stream. */
  close(): void;
  /** Everything received, once the runtime has ended the stream. Rejects on a stream error. */
  readonly received: Promise<Envelope[]>;
}

/**
 * Opens a StreamSession, sends one subscribe frame for `sessionId` and
 * collects the replayed and live envelopes until the stream ends. An inline
 * error frame fails the subscription: the examples never expect one.
 */
export function subscribe(agent: Agent, sessionId: string, afterSequence = 0n): Subscription {
  let finish: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    finish = resolve;
  });
  async function* requests() {
    yield { subscribeSessionId: sessionId, afterSequence };
    await closed;
  }
  const received = (async () => {
    const envelopes: Envelope[] = [];
    for await (const frame of agent.client.streamSession(requests(), agent.auth)) {
      if (frame.response.case === "envelope") {
        envelopes.push(frame.response.value);
      } else if (frame.response.case === "error") {
        const error = frame.response.value;
        throw new ExampleFailure("subscribe", `inline error ${error.code}: ${error.message}`);
      }
    }
    return envelopes;
  })();
  // Keep an early failure from surfacing as an unhandled rejection before the
  // example gets round to awaiting `received`.
  received.catch(() => {});
  return { close: finish, received };
}

/** Rejects with an ExampleFailure if `promise` takes longer than `ms`. */
export async function within<T>(step: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ExampleFailure(step, `no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Initialize without credentials, as the SDKs do, and check the runtime picked 1.0. */
export async function initialize(connection: ExampleConnection, clientName: string): Promise<void> {
  const response = await connection.client.initialize({
    supportedProtocolVersions: ["1.0"],
    clientInfo: { name: clientName, version: "0.1.0" },
  });
  connection.log(
    `[Initialize] selected=${response.selectedProtocolVersion} runtime=${response.runtimeInfo?.name ?? ""} ${response.runtimeInfo?.version ?? ""} modes=${response.supportedModes.length}`,
  );
  if (response.selectedProtocolVersion !== "1.0") {
    throw new ExampleFailure(
      "Initialize",
      `expected protocol 1.0, got '${response.selectedProtocolVersion}'`,
    );
  }
}

/** Fails unless the runtime advertises `mode`. */
export async function requireMode(connection: ExampleConnection, mode: string): Promise<void> {
  const standard = await connection.client.listModes({});
  const extensions = await connection.client.listExtModes({});
  const all = [...standard.modes, ...extensions.modes].map((descriptor) => descriptor.mode);
  connection.log(`[ListModes] ${all.join(" ")}`);
  if (!all.includes(mode)) {
    throw new ExampleFailure("ListModes", `the runtime does not offer ${mode}`);
  }
}

/** Fails unless the subscriber saw exactly these message types, in this order. */
export function expectSequence(
  log: (line: string) => void,
  step: string,
  envelopes: readonly Envelope[],
  expected: readonly string[],
): void {
  const seen = envelopes.map((e) => `${e.messageType}(${e.sender})`);
  log(`[${step}] ${seen.join(" -> ")}`);
  const types = envelopes.map((e) => e.messageType);
  if (types.join(",") !== expected.join(",")) {
    throw new ExampleFailure(
      step,
      `expected ${expected.join(" -> ")}, received ${types.join(" -> ") || "nothing"}`,
    );
  }
}

/** Builds the envelopes of one session: `message(sender, messageType, payload)`. */
export type SessionMessages = (
  sender: string,
  messageType: string,
  payload?: Uint8Array,
) => Envelope;

export function sessionMessages(mode: string, sessionId: string): SessionMessages {
  return (sender, messageType, payload) =>
    envelope({ mode, sessionId, sender, messageType, payload });
}

export interface ExampleSessionOptions {
  readonly mode: string;
  /** The client name Initialize reports. */
  readonly clientName: string;
  /** Sends the SessionStart and so becomes the session's initiator. */
  readonly initiator: Agent;
  readonly intent: string;
  readonly participants: readonly Agent[];
}

/**
 * An open session of an example and the steps its agents play in it. Each
 * step is logged as `<messageType> (<agent>)`, or `<messageType> (<agent>, <note>)`
 * when a note says what is special about it ("too early", "retried").
 */
export interface ExampleSession {
  readonly sessionId: string;
  /** An envelope of this session sent by `agent`, with a fresh message_id. */
  message(agent: Agent, messageType: string, payload: Uint8Array): Envelope;
  /** Sends `sent` as `agent` and fails unless the Ack is `expected`. */
  send(agent: Agent, sent: Envelope, expected: ExpectedAck, note?: string): Promise<Ack>;
  /** Sends a new message of this session as `agent` and fails unless the Ack is `expected`. */
  step(
    agent: Agent,
    messageType: string,
    payload: Uint8Array,
    expected: ExpectedAck,
    note?: string,
  ): Promise<Ack>;
  /** Reads the session as `agent` (step `GetSession (<agent>)`) and fails unless it is in `state`. */
  expectState(agent: Agent, state: SessionState, note?: string): Promise<SessionMetadata>;
}

/**
 * The prologue of every mode example: Initialize, check the runtime offers
 * `mode`, then start a session as `initiator` and check it opened.
 */
export async function openExampleSession(
  connection: ExampleConnection,
  options: ExampleSessionOptions,
): Promise<ExampleSession> {
  const { log } = connection;
  const { mode, initiator } = options;
  await initialize(connection, options.clientName);
  await requireMode(connection, mode);

  const sessionId = newSessionId();
  const messages = sessionMessages(mode, sessionId);
  const session: ExampleSession = {
    sessionId,
    message: (agent, messageType, payload) => messages(agent.id, messageType, payload),
    async send(agent, sent, expected, note) {
      const step = stepName(sent.messageType, agent, note);
      return expectAck(log, step, await agent.send(sent), expected);
    },
    step: (agent, messageType, payload, expected, note) =>
      session.send(agent, session.message(agent, messageType, payload), expected, note),
    async expectState(agent, state, note) {
      const metadata = await agent.getSession(sessionId);
      expectSession(log, stepName("GetSession", agent, note), metadata, { state, mode });
      return metadata;
    },
  };
  const participants = options.participants.map((participant) => participant.id);
  await session.step(
    initiator,
    "SessionStart",
    sessionStartPayload({ intent: options.intent, participants }),
    { ok: true, state: SessionState.OPEN },
  );
  return session;
}

/** "Vote (alice)", or "Vote (alice, retried)" with a note. */
function stepName(action: string, agent: Agent, note: string | undefined): string {
  const who = agent.id.replace(/^agent:\/\//, "");
  return `${action} (${note === undefined ? who : `${who}, ${note}`})`;
}
