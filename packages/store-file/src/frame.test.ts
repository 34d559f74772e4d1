import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrame, FRAME_OVERHEAD, scanFrames, writeFrame } from "./frame.js";

const payloads = fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), {
  minLength: 1,
  maxLength: 12,
});

function log(items: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(items.map(encodeFrame));
}

describe("writeFrame", () => {
  it("frames exactly as encodeFrame does, in place", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.nat(16), (payload, at) => {
        const target = new Uint8Array(at + FRAME_OVERHEAD + payload.length + 3);
        expect(writeFrame(target, at, payload)).toBe(at + FRAME_OVERHEAD + payload.length);
        expect([...target.subarray(at, at + FRAME_OVERHEAD + payload.length)]).toEqual([
          ...encodeFrame(payload),
        ]);
      }),
    );
  });
});

describe("scanFrames", () => {
  it("reads back every frame of an intact log", () => {
    fc.assert(
      fc.property(payloads, (items) => {
        const scan = scanFrames(log(items), 0);
        expect(scan.status).toBe("clean");
        expect(scan.frames.map((frame) => [...frame.payload])).toEqual(items.map((p) => [...p]));
      }),
    );
  });

  it("treats any cut-off log as a torn tail and keeps the complete frames before it", () => {
    fc.assert(
      fc.property(payloads, fc.nat(), (items, cutSeed) => {
        const bytes = log(items);
        const cut = cutSeed % bytes.length;
        const scan = scanFrames(bytes.subarray(0, cut), 0);
        expect(scan.status).not.toBe("corrupt");
        const kept = scan.frames.map((frame) => [...frame.payload]);
        expect(kept).toEqual(items.slice(0, kept.length).map((p) => [...p]));
        expect(scan.end).toBe(kept.reduce((sum, p) => sum + FRAME_OVERHEAD + p.length, 0));
      }),
    );
  });

  it("calls damage before the last frame corrupt and damage in the last frame torn", () => {
    fc.assert(
      fc.property(payloads, fc.nat(), fc.integer({ min: 1, max: 255 }), (items, at, flip) => {
        const bytes = log(items);
        const index = at % bytes.length;
        const damaged = bytes.slice();
        damaged[index] = (damaged[index] ?? 0) ^ flip;
        const lastStart = bytes.length - FRAME_OVERHEAD - (items.at(-1)?.length ?? 0);
        const scan = scanFrames(damaged, 0);
        expect(scan.status).toBe(index < lastStart ? "corrupt" : "torn");
      }),
    );
  });

  it("treats a zero-filled tail as torn", () => {
    const bytes = Buffer.concat([log([Uint8Array.of(1, 2, 3)]), new Uint8Array(4096)]);
    const scan = scanFrames(bytes, 0);
    expect(scan.status).toBe("torn");
    expect(scan.frames).toHaveLength(1);
  });

  it("refuses to frame an empty record", () => {
    expect(() => encodeFrame(new Uint8Array(0))).toThrow(RangeError);
  });
});
