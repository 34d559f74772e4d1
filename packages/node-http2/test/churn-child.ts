// Run by young-garbage.test.ts in a fresh process (node --expose-gc): churns
// streams through a table whose storage has already reached V8's old
// generation, as a long-lived HTTP/2 connection does, and prints how much the
// old generation grew: what the minor GCs promoted.
import { getHeapSpaceStatistics } from "node:v8";
import { runInNewContext } from "node:vm";
import { StreamTable } from "../src/stream-table.js";

interface Table {
  set(id: number, stream: object): unknown;
  delete(id: number): boolean;
}

type CollectGarbage = (options: { type: "minor" | "major" }) => void;
const collectGarbage = runInNewContext("gc") as CollectGarbage;

const oldSpaceUsed = (): number =>
  getHeapSpaceStatistics().find((space) => space.space_name === "old_space")?.space_used_size ?? 0;

const CONCURRENT = 8;
const CALLS = Number(process.argv[3] ?? 20_000);
const table: Table = process.argv[2] === "map" ? new Map<number, object>() : new StreamTable();

let nextId = 1;
const open: number[] = [];
const openStream = (): void => {
  // A stand-in for a stream and what hangs off it: a few small objects.
  table.set(nextId, { id: nextId, parts: [{ id: nextId }, { id: nextId }, { id: nextId }] });
  open.push(nextId);
  nextId += 2;
};

for (let index = 0; index < CONCURRENT; index++) openStream();
// The table outlives two minor GCs untouched (a connection between bursts): it is old now.
collectGarbage({ type: "minor" });
collectGarbage({ type: "minor" });
const before = oldSpaceUsed();
for (let call = 0; call < CALLS; call++) {
  openStream();
  table.delete(open.shift() as number);
}
collectGarbage({ type: "minor" });
collectGarbage({ type: "minor" });
process.stdout.write(`${JSON.stringify({ promotedBytes: oldSpaceUsed() - before })}\n`);
