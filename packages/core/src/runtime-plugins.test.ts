// createRuntime's extension points: host modes (`modes`) and the observer hook.

import { create } from "@bufbuild/protobuf";
import { ModeDescriptorSchema, PolicyDescriptorSchema, SessionState } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { describe, expect, it } from "vitest";
import { ErrorCode, macpError } from "./errors.js";
import { createDevIdentity } from "./identity.js";
import type { JsonObject } from "./json.js";
import type { ModeHandler } from "./mode-handler.js";
import type { MacpRuntime } from "./runtime-api.js";
import type { RuntimeObserver } from "./runtime-observer.js";
import { composeObservers } from "./runtime-observer.js";
import type { ModePlugin } from "./runtime-options.js";
import {
  accepted,
  envelope,
  harness,
  proposalEnvelope,
  refusal,
  sessionId,
  startEnvelope,
  take,
} from "./testing/fixtures.js";

const COUNTER = "ext.counter.v1";

/** A toy mode: participants send "Tick"; the third tick resolves the session with "3". */
const counterHandler: ModeHandler<number> = {
  onSessionStart: (session) =>
    session.participants.length === 0
      ? err(macpError(ErrorCode.INVALID_ENVELOPE, "a counter needs participants"))
      : ok(0),
  authorizeSender: (ctx, _state, env) =>
    ctx.session.participants.includes(env.sender)
      ? ok(undefined)
      : err(macpError(ErrorCode.FORBIDDEN, "not a participant")),
  onMessage: (_ctx, state, env) => {
    if (env.messageType !== "Tick") {
      return err(
        macpError(ErrorCode.INVALID_ENVELOPE, `a counter takes Tick, not ${env.messageType}`),
      );
    }
    const next = state + 1;
    return ok(
      next === 3 ? { state: next, resolution: new TextEncoder().encode("3") } : { state: next },
    );
  },
  encodeState: (state) => ({ count: state }),
};

const counterMode: ModePlugin = {
  descriptor: create(ModeDescriptorSchema, {
    mode: COUNTER,
    modeVersion: "1.0.0",
    title: "Counter",
    messageTypes: ["SessionStart", "Tick"],
    terminalMessageTypes: ["Tick"],
  }),
  handler: counterHandler as ModeHandler,
};

const tick = (id: string, sender: string) =>
  envelope({ sessionId: id, sender, mode: COUNTER, messageType: "Tick" });

describe("createRuntime({ modes })", () => {
  it("serves a host mode next to the built-in ones, live and after recovery", async () => {
    const { runtime, store, clock } = harness({ modes: [counterMode] });
    expect(runtime.listExtModes().map((d) => d.mode)).toContain(COUNTER);
    const id = sessionId();
    await accepted(
      runtime,
      startEnvelope(id, "agent://a", { mode: COUNTER, participants: ["agent://a"] }),
    );
    await accepted(runtime, tick(id, "agent://a"));
    expect(runtime.inspectSession(id)?.modeState).toEqual({ count: 1 });
    expect(await refusal(runtime, tick(id, "agent://b"))).toBe(ErrorCode.FORBIDDEN);
    await accepted(runtime, tick(id, "agent://a"));
    const last = await accepted(runtime, tick(id, "agent://a"));
    expect(last.sessionState).toBe(SessionState.RESOLVED);
    const live = runtime.inspectSession(id);

    const { runtime: restarted } = harness({ modes: [counterMode], store, clock });
    await restarted.recover();
    expect(restarted.inspectSession(id)?.modeState).toEqual({ count: 3 });
    expect(restarted.inspectSession(id)?.resolution).toEqual(live?.resolution);
  });

  it("refuses what the host mode refuses", async () => {
    const { runtime } = harness({ modes: [counterMode] });
    const id = sessionId();
    expect(
      await refusal(runtime, startEnvelope(id, "agent://a", { mode: COUNTER, participants: [] })),
    ).toBe(ErrorCode.INVALID_ENVELOPE);
  });

  it("cannot be unregistered over the wire", () => {
    const { runtime } = harness({ modes: [counterMode] });
    const outcome = runtime.unregisterExtMode(COUNTER, admin);
    expect(outcome.isOk() && outcome.value.ok).toBe(false);
  });

  it("throws on a name that is taken or blank", () => {
    const taken = {
      ...counterMode,
      descriptor: { ...counterMode.descriptor, mode: "macp.mode.decision.v1" },
    };
    expect(() => harness({ modes: [taken] })).toThrow(/already registered/);
    const blank = { ...counterMode, descriptor: { ...counterMode.descriptor, mode: " " } };
    expect(() => harness({ modes: [blank] })).toThrow(/blank/);
    expect(() => harness({ modes: [counterMode, counterMode] })).toThrow(/already registered/);
  });
});

/** The counter's policy rules: `{"max_ticks": n}` caps the ticks a session may take. */
function maxTicksOf(rules: JsonObject): Result<number | undefined, string> {
  const value = rules.max_ticks;
  if (value === undefined) return ok(undefined);
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0
    ? ok(value)
    : err("max_ticks must be a positive integer");
}

/** The counter, governed: it brings its own rules check and evaluates the bound policy itself. */
const governedCounterMode: ModePlugin = {
  ...counterMode,
  handler: {
    ...counterHandler,
    policyRules: { check: (rules) => maxTicksOf(rules).map(() => undefined) },
    onMessage: (ctx, state, env) => {
      const cap = maxTicksOf(ctx.session.policy.rules).unwrapOr(undefined);
      if (cap !== undefined && state >= cap) {
        return err(macpError(ErrorCode.POLICY_DENIED, `the policy allows ${cap} tick(s)`));
      }
      return counterHandler.onMessage(ctx, state, env);
    },
  } satisfies ModeHandler<number> as ModeHandler,
};

const admin = { ...createDevIdentity("agent://admin"), canManageModeRegistry: true };

function registerCounterPolicy(runtime: MacpRuntime, policyId: string, rules: string) {
  const descriptor = create(PolicyDescriptorSchema, {
    policyId,
    mode: COUNTER,
    rules,
    schemaVersion: 1,
  });
  return runtime.registerPolicy(descriptor, admin)._unsafeUnwrap();
}

describe("createRuntime({ modes }): a host mode's own policy rules", () => {
  it("checks a policy for the mode with the mode's rules check at RegisterPolicy", () => {
    const { runtime } = harness({ modes: [governedCounterMode] });
    const refused = registerCounterPolicy(runtime, "policy.counter.bad", '{"max_ticks": "two"}');
    expect(refused).toEqual({
      ok: false,
      error: "INVALID_POLICY_DEFINITION: max_ticks must be a positive integer",
    });
    expect(registerCounterPolicy(runtime, "policy.counter.two", '{"max_ticks": 2}').ok).toBe(true);
  });

  it("still applies the rule every mode shares (designated_role needs roles)", () => {
    const { runtime } = harness({ modes: [governedCounterMode] });
    const rules = '{"max_ticks": 2, "commitment": {"authority": "designated_role"}}';
    expect(registerCounterPolicy(runtime, "policy.counter.roles", rules).error).toContain(
      "designated_roles",
    );
  });

  it("lets the mode evaluate the policy its session bound", async () => {
    const { runtime } = harness({ modes: [governedCounterMode] });
    registerCounterPolicy(runtime, "policy.counter.one", '{"max_ticks": 1}');
    const id = sessionId();
    await accepted(
      runtime,
      startEnvelope(id, "agent://a", {
        mode: COUNTER,
        participants: ["agent://a"],
        policyVersion: "policy.counter.one",
      }),
    );
    await accepted(runtime, tick(id, "agent://a"));
    expect(await refusal(runtime, tick(id, "agent://a"))).toBe(ErrorCode.POLICY_DENIED);
  });

  it("checks preloaded policies for the mode too, and accepts any rules for a mode without a check", () => {
    const policy = {
      policyId: "policy.counter.preloaded",
      mode: COUNTER,
      description: "",
      rules: { max_ticks: 0 },
      schemaVersion: 1,
      registeredAtUnixMs: 0,
    };
    expect(() => harness({ modes: [governedCounterMode], policies: [policy] })).toThrow(
      /max_ticks must be a positive integer/,
    );
    expect(() => harness({ modes: [counterMode], policies: [policy] })).not.toThrow();
  });
});

describe("createRuntime({ observer })", () => {
  it("reports sends, control calls, streams and sessions entering and leaving memory", async () => {
    const seen: string[] = [];
    const observer: RuntimeObserver = {
      sendSettled: (env, outcome) =>
        seen.push(`send ${env?.messageType} ${outcome.isOk() ? "ok" : outcome.error.code}`),
      controlSettled: (operation, outcome) =>
        seen.push(`${operation} ${outcome.isOk() ? "ok" : outcome.error.code}`),
      streamOpened: (rpc) => seen.push(`open ${rpc}`),
      streamClosed: (rpc) => seen.push(`close ${rpc}`),
      streamFrame: (kind) => seen.push(`frame ${kind}`),
      sessionLoaded: () => seen.push("loaded"),
      sessionEvicted: () => seen.push("evicted"),
    };
    const { runtime, clock, as } = harness({ observer, limits: { sessionRetentionMs: 1000 } });
    const abort = new AbortController();
    const watch = runtime.watchSessions(as("agent://a"), abort.signal);
    expect(watch.isOk()).toBe(true);
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    await runtime.send(proposalEnvelope(id, "agent://z"), as("agent://z"));
    await runtime.cancelSession(id, "done", as("agent://b"));
    await runtime.cancelSession(id, "done", as("agent://a"));
    const stream = runtime.openSessionStream(as("agent://a"));
    if (stream.isErr()) throw new Error(stream.error.message);
    await stream.value.push({
      $typeName: "macp.v1.StreamSessionRequest",
      subscribeSessionId: id,
      afterSequence: 0n,
    });
    await take(stream.value.outputs, 1);
    stream.value.end();
    abort.abort();
    clock.advance(2000);
    await runtime.processDueWork();
    await runtime.close();
    expect(seen).toEqual([
      "open WatchSessions",
      "loaded",
      "send SessionStart ok",
      `send Proposal ${ErrorCode.FORBIDDEN}`,
      `cancel ${ErrorCode.FORBIDDEN}`,
      "cancel ok",
      "open StreamSession",
      "frame subscribe",
      "close StreamSession",
      "close WatchSessions",
      "evicted",
    ]);
  });

  it("reports who was refused: the Send caller and a stream envelope's inline error", async () => {
    const seen: string[] = [];
    const { runtime, as } = harness({
      observer: {
        sendSettled: (env, outcome, caller) =>
          seen.push(
            `send ${env?.messageType} ${"sender" in caller ? caller.sender : "?"} ${outcome.isOk() ? "ok" : outcome.error.code}`,
          ),
        streamRefused: (env, error, caller) =>
          seen.push(`stream ${env.messageType} ${caller.sender} ${error.code}`),
      },
    });
    const id = sessionId();
    await accepted(runtime, startEnvelope(id, "agent://a"));
    await runtime.send(proposalEnvelope(id, "agent://z"), as("agent://z"));
    const stream = runtime.openSessionStream(as("agent://z"));
    if (stream.isErr()) throw new Error(stream.error.message);
    await stream.value.push({
      $typeName: "macp.v1.StreamSessionRequest",
      subscribeSessionId: "",
      afterSequence: 0n,
      envelope: proposalEnvelope(id, "agent://z"),
    });
    const [inline] = await take(stream.value.outputs, 1);
    expect(inline?.kind).toBe("error");
    stream.value.end();
    expect(seen).toEqual([
      "send SessionStart agent://a ok",
      `send Proposal agent://z ${ErrorCode.FORBIDDEN}`,
      `stream Proposal agent://z ${ErrorCode.FORBIDDEN}`,
    ]);
  });

  it("composes several observers, each hook in order", () => {
    const calls: string[] = [];
    const combined = composeObservers(
      { streamFrame: (kind) => calls.push(`first ${kind}`) },
      undefined,
      {
        streamFrame: (kind) => calls.push(`second ${kind}`),
        streamOpened: (rpc) => calls.push(rpc),
      },
    );
    combined.streamFrame?.("envelope");
    combined.streamOpened?.("WatchRoots");
    expect(combined.sessionLoaded).toBeUndefined();
    expect(calls).toEqual(["first envelope", "second envelope", "WatchRoots"]);
  });
});
