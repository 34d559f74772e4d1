// `npm run bench`: prints the kernel and server figures.
import { runP1 } from "./p1-send.js";
import { formatP2Summary, runP2 } from "./p2/index.js";
import { formatP3, formatP4Disk, runP3, runP4Disk } from "./p3/index.js";
import { runP4 } from "./p4-replay.js";
import { runP5 } from "./p5-memory.js";
import { formatP6, runP6 } from "./p6-cluster.js";

const only = new Set(process.argv.slice(2).map((a) => a.toUpperCase()));
const wanted = (name: string) => only.size === 0 || only.has(name);
const fmt = (n: number, digits = 2) => n.toFixed(digits);

async function main(): Promise<void> {
  console.log(`macp-ts benchmarks — node ${process.version}, ${process.platform}/${process.arch}`);
  if (wanted("P1")) {
    const p1 = await runP1();
    const pb = p1.protobuf;
    console.log(
      `P1  send → Ack, in-process, decision mode, ${p1.sessions} sessions, memory store, ` +
        `rate limiter in the path with an infinite limit: ` +
        `${fmt(p1.microsPerMessage)} µs/message (median of ${p1.rounds} rounds × ${p1.messagesPerRound} ` +
        `after ${p1.warmupRounds} warm-up rounds; goal ≤ 2.0)`,
    );
    console.log(
      `    protobuf-es alone for the same message: decode SendRequest ${fmt(pb.decodeRequest)} µs, ` +
        `decode payload ${fmt(pb.decodePayload)} µs, encode SendResponse ${fmt(pb.encodeResponse)} µs`,
    );
  }
  if (wanted("P2")) {
    console.log(formatP2Summary(await runP2()));
  }
  if (wanted("P3")) {
    for (const line of formatP3(await runP3())) console.log(line);
  }
  if (wanted("P4")) {
    const p4 = await runP4("mix");
    console.log(
      `P4  recovery by replay (memory store), ${p4.entries} entries over ${p4.sessions} whole decision sessions ` +
        `(each: start, 4 proposals, 40 evaluations, 8 objections, 46 votes, commitment): ` +
        `${fmt(p4.entriesPerSecond / 1e6)} M entries/s (goal ≥ 1.5)`,
    );
    const worst = await runP4("evaluations");
    console.log(
      `    same size, each session start + proposal + 98 evaluations (growing state): ` +
        `${fmt(worst.entriesPerSecond / 1e6)} M entries/s`,
    );
    for (const line of formatP4Disk(await runP4Disk())) console.log(line);
  }
  if (wanted("P5")) {
    const p5 = await runP5();
    console.log(
      `P5  heap per idle open session, ${p5.sessions} sessions: ${fmt(p5.bytesPerSession, 0)} bytes ` +
        `(${fmt(p5.bytesPerSession / 1024)} KiB; goal ≤ 4 KiB)${p5.gcExposed ? "" : " [run with --expose-gc for exact figures]"}`,
    );
  }
  if (wanted("P6")) {
    for (const line of formatP6(await runP6())) console.log(line);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
