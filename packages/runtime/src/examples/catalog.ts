// Every runnable example client, by the name `npm run example -- <name>` takes.

import { runDecision } from "./decision.js";
import { runFuzz } from "./fuzz.js";
import { runHandoff } from "./handoff.js";
import { runMultiRound } from "./multi-round.js";
import { runProposal } from "./proposal.js";
import { runQuorum } from "./quorum.js";
import type { Example } from "./support.js";
import { runTask } from "./task.js";

export const EXAMPLES: Readonly<Record<string, Example>> = {
  decision: runDecision,
  proposal: runProposal,
  task: runTask,
  handoff: runHandoff,
  quorum: runQuorum,
  "multi-round": runMultiRound,
  fuzz: runFuzz,
};

export type { Example, ExampleOptions } from "./support.js";
export { runDecision, runFuzz, runHandoff, runMultiRound, runProposal, runQuorum, runTask };
