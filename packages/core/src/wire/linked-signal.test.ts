import { describe, expect, it, vi } from "vitest";
import { linkSignals } from "./linked-signal.js";

/** A source signal whose listeners are counted as they come and go. */
function countedSource() {
  const controller = new AbortController();
  const { signal } = controller;
  let listeners = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  vi.spyOn(signal, "addEventListener").mockImplementation((...args) => {
    listeners++;
    add(...args);
  });
  vi.spyOn(signal, "removeEventListener").mockImplementation((...args) => {
    listeners--;
    remove(...args);
  });
  return { controller, signal, listeners: () => listeners };
}

describe("linkSignals", () => {
  it("aborts with the reason of the first source that aborts, and lets go of every source", () => {
    const [first, second] = [countedSource(), countedSource()];
    const linked = linkSignals(first.signal, undefined, second.signal);
    expect(linked.signal.aborted).toBe(false);
    expect([first.listeners(), second.listeners()]).toEqual([1, 1]);
    const reason = new Error("request timeout expired");
    second.controller.abort(reason);
    first.controller.abort(new Error("later"));
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe(reason);
    expect([first.listeners(), second.listeners()]).toEqual([0, 0]);
  });

  it("is aborted at once, with the reason, when a source already is", () => {
    const live = countedSource();
    const gone = new AbortController();
    gone.abort("shutting down");
    const linked = linkSignals(live.signal, gone.signal);
    expect(linked.signal.aborted).toBe(true);
    expect(linked.signal.reason).toBe("shutting down");
    expect(live.listeners()).toBe(0);
  });

  it("once disposed, holds nothing on its sources and no longer follows them", () => {
    const shutdown = countedSource();
    const linked = linkSignals(shutdown.signal);
    linked.dispose();
    expect(shutdown.listeners()).toBe(0);
    shutdown.controller.abort();
    expect(linked.signal.aborted).toBe(false);
  });

  it("never aborts without a source", () => {
    expect(linkSignals(undefined).signal.aborted).toBe(false);
  });
});
