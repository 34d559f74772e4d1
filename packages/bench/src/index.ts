// The benchmark suite as a library, for scripts that want the figures as data.
export { type P1Result, runP1 } from "./p1-send.js";
export * from "./p2/index.js";
export * from "./p3/index.js";
export { type P4Result, runP4 } from "./p4-replay.js";
export { type P5Result, runP5 } from "./p5-memory.js";
