// The server side of the soak: the runtime exactly as `macp-runtime` starts it
// (configuration from MACP_* variables, `startRuntime`), in a child process
// the soak driver forks with --expose-gc, so that it can ask for a memory
// sample after a full collection and for heap snapshots over IPC.

import { writeHeapSnapshot } from "node:v8";
import { loadConfig, startRuntime } from "@macp/runtime";
import type { FromSoakServer, ToSoakServer } from "./soak-wire.js";

function reply(message: FromSoakServer): void {
  process.send?.(message);
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return;
  gc();
  gc();
}

const loaded = loadConfig(process.env);
if (!loaded.ok) {
  reply({ type: "error", message: loaded.errors.map((e) => e.message).join("; ") });
  process.exit(1);
}
const running = await startRuntime(loaded.config);
reply({ type: "listening", url: running.url, httpUrl: running.httpUrl });

// A driver that dies must not leave its server running.
process.on("disconnect", () => {
  void running.close({ drainMs: 0 }).then(() => process.exit(0));
});

process.on("message", (message: ToSoakServer) => {
  switch (message.type) {
    case "sample": {
      collect();
      const memory = process.memoryUsage();
      reply({
        type: "sample",
        rssBytes: memory.rss,
        heapTotalBytes: memory.heapTotal,
        heapUsedBytes: memory.heapUsed,
        externalBytes: memory.external + memory.arrayBuffers,
      });
      return;
    }
    case "snapshot":
      collect();
      reply({ type: "snapshot", path: writeHeapSnapshot(message.path) });
      return;
    case "stop":
      void running.close({ drainMs: 1000 }).then(() => process.exit(0));
      return;
  }
});
