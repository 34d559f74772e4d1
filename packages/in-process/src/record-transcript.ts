import {
  type AgentTestHarness,
  type AgentTestHarnessOptions,
  createAgentTestHarness,
} from "./agent-test-harness.js";

/**
 * Runs `script` against a fresh harness with transcript recording on, closes
 * the harness (also when the script throws), and returns the transcript as
 * JSON Lines. Run the same script twice and compare the two strings to prove
 * it deterministic; give scripts fixed session and message ids, since
 * anything random the script puts into a message ends up in the transcript.
 */
export async function recordTranscript(
  options: Omit<AgentTestHarnessOptions, "transcript">,
  script: (harness: AgentTestHarness) => Promise<void>,
): Promise<string> {
  const harness = createAgentTestHarness({ ...options, transcript: true });
  try {
    await script(harness);
  } finally {
    await harness.close();
  }
  return harness.transcript?.toText() ?? "";
}
