import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXAMPLES } from "../src/examples/catalog.js";
import type { RunningRuntime } from "../src/start-runtime.js";
import { LISTENERS, startTestRuntime } from "./helpers.js";

describe.each(LISTENERS)("over %s", (_listener, urlOf) => {
  describe("example clients against the runtime server", () => {
    let server: RunningRuntime;
    beforeAll(async () => {
      server = await startTestRuntime();
    });
    afterAll(async () => {
      await server?.close({ drainMs: 0 });
    });

    for (const [name, example] of Object.entries(EXAMPLES)) {
      it(`${name} runs to completion`, async () => {
        const lines: string[] = [];
        await expect(
          example({ endpoint: urlOf(server), log: (line) => lines.push(line) }),
        ).resolves.toBeUndefined();
        expect(lines.length).toBeGreaterThan(3);
      });
    }
  });
});
