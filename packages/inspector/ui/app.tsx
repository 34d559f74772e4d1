import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import {
  type Ack,
  EnvelopeSchema,
  type inspector,
  type ModeDescriptor,
  type SessionMetadata,
  SessionStartPayloadSchema,
  SessionState,
} from "@macp/proto";
import { useEffect, useMemo, useState } from "preact/hooks";
import { encodePayload } from "../src/payload-schemas.js";
import { type Connection, openConnection, type Protocol, withBearer } from "./connection.js";
import { pretty, stateName, timeOfDay, ttlLeft, uuidV4 } from "./format.js";
import { payloadTemplate } from "./templates.js";
import { useNow, useStream } from "./use-stream.js";

const stored = (name: string, fallback: string): string =>
  localStorage.getItem(`macp-inspector.${name}`) ?? fallback;
const store = (name: string, value: string): void =>
  localStorage.setItem(`macp-inspector.${name}`, value);

export function App() {
  const [bearer, setBearer] = useState(stored("bearer", ""));
  const [draftBearer, setDraftBearer] = useState(bearer);
  const [protocol, setProtocol] = useState<Protocol>(stored("protocol", "connect") as Protocol);
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const connection = useMemo(() => openConnection(protocol, location.origin), [protocol]);
  const clockOffset = useServerClockOffset(connection, bearer);
  const [sessions, setSessions] = useState<ReadonlyMap<string, SessionMetadata>>(new Map());
  const sessionsError = useStream(
    bearer === "" ? "" : `${protocol}|${bearer}`,
    bearer === ""
      ? undefined
      : (signal) => connection.macp.watchSessions({}, withBearer(bearer, signal)),
    (response) => {
      const session = response.event?.session;
      if (session === undefined) return;
      setSessions((current) => new Map(current).set(session.sessionId, session));
    },
    () => setSessions(new Map()),
  );

  const apply = (event: Event): void => {
    event.preventDefault();
    store("bearer", draftBearer);
    setBearer(draftBearer);
    setSelected(undefined);
  };

  return (
    <div class="page">
      <header>
        <h1>MACP inspector</h1>
        <form class="auth" onSubmit={apply}>
          <Field
            label="Bearer"
            name="bearer"
            value={draftBearer}
            placeholder="token (dev mode: an agent id)"
            onValue={setDraftBearer}
          />
          <button type="submit">Watch</button>
          <label>
            Protocol{" "}
            <select
              name="protocol"
              value={protocol}
              onChange={(event) => {
                const value = event.currentTarget.value as Protocol;
                store("protocol", value);
                setProtocol(value);
              }}
            >
              <option value="connect">Connect</option>
              <option value="grpc-web">gRPC-Web</option>
            </select>
          </label>
        </form>
      </header>
      {bearer === "" ? (
        <p class="hint">Enter a bearer token to watch the runtime as that caller.</p>
      ) : (
        <main>
          <SessionList
            sessions={sessions}
            error={sessionsError}
            clockOffset={clockOffset}
            selected={selected}
            onSelect={setSelected}
          />
          <section class="detail">
            {selected === undefined ? (
              <p class="hint">Select a session.</p>
            ) : (
              <SessionView
                key={`${protocol}|${bearer}|${selected}`}
                connection={connection}
                bearer={bearer}
                sessionId={selected}
                clockOffset={clockOffset}
              />
            )}
          </section>
          <aside>
            <Composer
              connection={connection}
              bearer={bearer}
              session={selected === undefined ? undefined : sessions.get(selected)}
              onStarted={setSelected}
            />
            <Refusals key={`${protocol}|${bearer}`} connection={connection} bearer={bearer} />
          </aside>
        </main>
      )}
    </div>
  );
}

/** Server time minus page time, so TTLs follow the runtime's clock. */
function useServerClockOffset(connection: Connection, bearer: string): number {
  const [offset, setOffset] = useState(0);
  useEffect(() => {
    const before = Date.now();
    connection.inspector
      .getClock({}, withBearer(bearer))
      .then((answer) => setOffset(Number(answer.nowUnixMs) - (before + Date.now()) / 2))
      .catch(() => setOffset(0));
  }, [connection, bearer]);
  return offset;
}

function SessionList(props: {
  sessions: ReadonlyMap<string, SessionMetadata>;
  error: string | undefined;
  clockOffset: number;
  selected: string | undefined;
  onSelect: (sessionId: string) => void;
}) {
  const { error } = props;
  const now = useNow() + props.clockOffset;
  const rows = [...props.sessions.values()].sort((a, b) =>
    Number(b.startedAtUnixMs - a.startedAtUnixMs),
  );
  return (
    <section class="sessions">
      <h2>Sessions ({rows.length})</h2>
      {error === undefined ? null : <p class="error">{error}</p>}
      <table>
        <thead>
          <tr>
            <th>session</th>
            <th>mode</th>
            <th>state</th>
            <th>participants</th>
            <th>TTL left</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((session) => (
            <tr
              key={session.sessionId}
              data-session-id={session.sessionId}
              class={session.sessionId === props.selected ? "selected" : ""}
              onClick={() => props.onSelect(session.sessionId)}
            >
              <td class="mono" title={session.sessionId}>
                {session.sessionId.slice(0, 8)}
              </td>
              <td>{shortMode(session.mode)}</td>
              <td>
                <span class={`state state-${stateName(session.state).toLowerCase()}`}>
                  {stateName(session.state)}
                </span>
              </td>
              <td>{session.participants.join(", ")}</td>
              <td class="ttl">{ttlLeft(session.state, Number(session.expiresAtUnixMs), now)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function shortMode(mode: string): string {
  return mode.replace(/^macp\.mode\./, "").replace(/\.v\d+$/, "");
}

function SessionView(props: {
  connection: Connection;
  bearer: string;
  sessionId: string;
  clockOffset: number;
}) {
  const { connection, bearer, sessionId } = props;
  const [entries, setEntries] = useState<inspector.TimelineEntry[]>([]);
  const [refusals, setRefusals] = useState<inspector.Refusal[]>([]);
  const [snapshot, setSnapshot] = useState<inspector.SessionSnapshot | undefined>(undefined);
  const now = useNow() + props.clockOffset;
  const error = useStream(
    sessionId,
    (signal) => connection.inspector.watchSession({ sessionId }, withBearer(bearer, signal)),
    (response) => {
      const item = response.item;
      if (item.case === "entry") setEntries((current) => [...current, item.value]);
      else if (item.case === "refusal") setRefusals((current) => [...current, item.value]);
      else if (item.case === "snapshot") setSnapshot(item.value);
    },
    () => {
      setEntries([]);
      setRefusals([]);
    },
  );
  const metadata = snapshot?.metadata;
  const verdict = snapshot?.verdict;
  return (
    <div class="session" data-session-id={sessionId}>
      <h2 class="mono">{sessionId}</h2>
      {error === undefined ? null : <p class="error">{error}</p>}
      {metadata === undefined ? null : (
        <dl class="facts">
          <dt>state</dt>
          <dd>
            <span
              class={`state state-${stateName(metadata.state).toLowerCase()}`}
              data-testid="session-state"
            >
              {stateName(metadata.state)}
            </span>
          </dd>
          <dt>mode</dt>
          <dd>
            {metadata.mode} {metadata.modeVersion}
          </dd>
          <dt>initiator</dt>
          <dd>{metadata.initiator}</dd>
          <dt>participants</dt>
          <dd>{metadata.participants.join(", ")}</dd>
          <dt>policy</dt>
          <dd>{metadata.policyVersion}</dd>
          <dt>TTL left</dt>
          <dd>{ttlLeft(metadata.state, Number(metadata.expiresAtUnixMs), now)}</dd>
          <dt>accepted</dt>
          <dd>{String(snapshot?.acceptedCount ?? 0n)}</dd>
        </dl>
      )}
      {verdict === undefined ? null : (
        <div class={`verdict ${verdict.allowed ? "allowed" : "denied"}`} data-testid="verdict">
          Policy <b>{verdict.policyVersion}</b> at commitment{" "}
          <span class="mono">{verdict.commitmentMessageId}</span>:{" "}
          <b>{verdict.allowed ? "allowed" : "denied"}</b>
          {verdict.reasons.length === 0 ? null : (
            <ul>
              {verdict.reasons.map((reason) => (
                <li key={reason}>{reason}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      {snapshot === undefined || snapshot.resolutionJson === "" ? null : (
        <div class="resolution" data-testid="resolution">
          <h3>Resolution</h3>
          <pre>{pretty(snapshot.resolutionJson)}</pre>
        </div>
      )}
      <h3>Timeline</h3>
      <ol class="timeline" data-testid="timeline">
        {entries.map((entry) => (
          <li
            key={String(entry.sequence)}
            data-message-type={entry.envelope?.messageType}
            data-sequence={String(entry.sequence)}
          >
            <div class="entry-head">
              <span class="seq">#{String(entry.sequence)}</span>
              <b>{entry.envelope?.messageType}</b> from <i>{entry.envelope?.sender}</i>
              <span class="muted mono">{entry.envelope?.messageId}</span>
              <span class="muted">{timeOfDay(entry.envelope?.timestampUnixMs ?? 0n)}</span>
            </div>
            <pre title={entry.payloadType}>{pretty(entry.payloadJson)}</pre>
          </li>
        ))}
      </ol>
      {refusals.length === 0 ? null : (
        <>
          <h3>Refusals</h3>
          <RefusalItems refusals={refusals} />
        </>
      )}
      {snapshot === undefined || snapshot.modeStateJson === "" ? null : (
        <details open>
          <summary>Mode state</summary>
          <pre data-testid="mode-state">{pretty(snapshot.modeStateJson)}</pre>
        </details>
      )}
    </div>
  );
}

function RefusalItems(props: { refusals: readonly inspector.Refusal[] }) {
  return (
    <ul class="refusals">
      {props.refusals.map((refusal, index) => (
        <li key={`${refusal.refusedAtUnixMs}-${index}`} data-code={refusal.error?.code}>
          <b class="code">{refusal.error?.code}</b> {refusal.envelope?.messageType ?? "?"} from{" "}
          <i>{refusal.caller || "(unauthenticated)"}</i> via {refusal.rpc}
          <span class="muted"> {timeOfDay(refusal.refusedAtUnixMs)}</span>
          <div class="muted">{refusal.error?.message}</div>
        </li>
      ))}
    </ul>
  );
}

function Refusals(props: { connection: Connection; bearer: string }) {
  const { connection, bearer } = props;
  const [refusals, setRefusals] = useState<inspector.Refusal[]>([]);
  const error = useStream(
    bearer,
    (signal) => connection.inspector.watchRefusals({}, withBearer(bearer, signal)),
    (response) => {
      const refusal = response.refusal;
      if (refusal !== undefined) setRefusals((current) => [refusal, ...current].slice(0, 50));
    },
    () => setRefusals([]),
  );
  return (
    <section class="all-refusals">
      <h2>Recent refusals</h2>
      {error === undefined ? null : <p class="error">{error}</p>}
      {refusals.length === 0 ? <p class="hint">None.</p> : <RefusalItems refusals={refusals} />}
    </section>
  );
}

function useModes(connection: Connection): readonly ModeDescriptor[] {
  const [modes, setModes] = useState<readonly ModeDescriptor[]>([]);
  useEffect(() => {
    Promise.all([connection.macp.listModes({}), connection.macp.listExtModes({})])
      .then(([standard, extensions]) => setModes([...standard.modes, ...extensions.modes]))
      .catch(() => setModes([]));
  }, [connection]);
  return modes;
}

function describeAck(ack: Ack | undefined): string {
  if (ack === undefined) return "no answer";
  if (ack.ok) return ack.duplicate ? "accepted (duplicate)" : "accepted";
  return `refused: ${ack.error?.code ?? "?"} ${ack.error?.message ?? ""}`;
}

function Composer(props: {
  connection: Connection;
  bearer: string;
  session: SessionMetadata | undefined;
  onStarted: (sessionId: string) => void;
}) {
  const { connection, bearer, session } = props;
  const modes = useModes(connection);
  const [sendAs, setSendAs] = useState(bearer);
  const [mode, setMode] = useState("macp.mode.decision.v1");
  const [participants, setParticipants] = useState("");
  const [ttlSeconds, setTtlSeconds] = useState("600");
  const [intent, setIntent] = useState("");
  const [messageType, setMessageType] = useState("");
  const [payload, setPayload] = useState("{}");
  const [outcome, setOutcome] = useState("");

  useEffect(() => setSendAs(bearer), [bearer]);
  const types = (
    modes.find((descriptor) => descriptor.mode === session?.mode)?.messageTypes ?? []
  ).filter((type) => type !== "SessionStart");
  // A new template when another session is selected, not on every update of this one.
  useEffect(() => {
    const first = types[0] ?? "";
    setMessageType(first);
    setPayload(payloadTemplate(session?.mode ?? "", first, session));
  }, [session?.sessionId, modes.length]);

  const send = async (build: () => ReturnType<typeof create<typeof EnvelopeSchema>>) => {
    try {
      const envelope = build();
      const answer = await connection.macp.send({ envelope }, withBearer(sendAs));
      setOutcome(`${envelope.messageType}: ${describeAck(answer.ack)}`);
      return answer.ack;
    } catch (cause) {
      setOutcome(ConnectError.from(cause).message);
      return undefined;
    }
  };

  const start = async (event: Event): Promise<void> => {
    event.preventDefault();
    const sessionId = uuidV4();
    const ack = await send(() =>
      create(EnvelopeSchema, {
        macpVersion: "1.0",
        mode,
        messageType: "SessionStart",
        messageId: uuidV4(),
        sessionId,
        sender: sendAs,
        timestampUnixMs: BigInt(Date.now()),
        payload: toBinary(
          SessionStartPayloadSchema,
          create(SessionStartPayloadSchema, {
            intent,
            participants: participants
              .split(",")
              .map((participant) => participant.trim())
              .filter((participant) => participant !== ""),
            modeVersion:
              modes.find((descriptor) => descriptor.mode === mode)?.modeVersion ?? "1.0.0",
            configurationVersion: "config.default",
            ttlMs: BigInt(Math.round(Number(ttlSeconds) * 1000)),
          }),
        ),
      }),
    );
    if (ack?.ok === true) props.onStarted(sessionId);
  };

  const sendEnvelope = async (event: Event): Promise<void> => {
    event.preventDefault();
    if (session === undefined) return;
    await send(() =>
      create(EnvelopeSchema, {
        macpVersion: "1.0",
        mode: session.mode,
        messageType,
        messageId: uuidV4(),
        sessionId: session.sessionId,
        sender: sendAs,
        timestampUnixMs: BigInt(Date.now()),
        payload: encodePayload(session.mode, messageType, payload),
      }),
    );
  };

  return (
    <section class="composer">
      <h2>Act</h2>
      <Field label="Send as (bearer)" name="send-as" value={sendAs} onValue={setSendAs} />
      <form onSubmit={start} data-testid="start-form">
        <h3>Start a session</h3>
        <label>
          Mode{" "}
          <select name="mode" value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
            {modes.map((descriptor) => (
              <option key={descriptor.mode} value={descriptor.mode}>
                {descriptor.mode}
              </option>
            ))}
          </select>
        </label>
        <Field
          label="Participants"
          name="participants"
          value={participants}
          placeholder="alice, bob"
          onValue={setParticipants}
        />
        <Field label="Intent" name="intent" value={intent} onValue={setIntent} />
        <Field
          label="TTL (s)"
          name="ttl"
          type="number"
          value={ttlSeconds}
          onValue={setTtlSeconds}
        />
        <button type="submit">Start</button>
      </form>
      <form onSubmit={sendEnvelope} data-testid="send-form">
        <h3>Send into the selected session</h3>
        {session === undefined || session.state !== SessionState.OPEN ? (
          <p class="hint">Select an open session.</p>
        ) : (
          <>
            <label>
              Message type{" "}
              <select
                name="message-type"
                value={messageType}
                onChange={(e) => {
                  const type = e.currentTarget.value;
                  setMessageType(type);
                  setPayload(payloadTemplate(session.mode, type, session));
                }}
              >
                {types.map((type) => (
                  <option key={type} value={type}>
                    {type}
                  </option>
                ))}
              </select>
            </label>
            <textarea
              name="payload"
              rows={8}
              value={payload}
              onInput={(e) => setPayload(e.currentTarget.value)}
            />
            <button type="submit">Send</button>
          </>
        )}
      </form>
      {outcome === "" ? null : (
        <p class="outcome" data-testid="outcome">
          {outcome}
        </p>
      )}
    </section>
  );
}

function Field(props: {
  label: string;
  name: string;
  value: string;
  onValue: (value: string) => void;
  placeholder?: string;
  type?: "text" | "number";
}) {
  return (
    <label>
      {props.label}{" "}
      <input
        name={props.name}
        type={props.type ?? "text"}
        value={props.value}
        placeholder={props.placeholder}
        onInput={(event) => props.onValue(event.currentTarget.value)}
      />
    </label>
  );
}
