import { describe, expect, it } from "vitest";
import type { JsonObject } from "../json.js";
import { parseDecisionRules } from "../modes/decision/decision-rules.js";
import { parseHandoffRules } from "../modes/handoff/handoff-rules.js";
import { parseProposalRules } from "../modes/proposal/proposal-rules.js";
import { parseQuorumRules } from "../modes/quorum/quorum-rules.js";
import { parseTaskRules } from "../modes/task/task-rules.js";
import { frozenJsonCopy } from "./frozen-json.js";
import {
  cachedCommitmentRules,
  commitmentRulesOrDefault,
  DEFAULT_COMMITMENT_RULES,
  memoizeByRules,
  rulesOrDefaults,
} from "./policy-rules.js";

describe("policy rule parsing", () => {
  it("fills the documented defaults for empty rules", () => {
    const decision = parseDecisionRules({})._unsafeUnwrap();
    expect(decision.voting).toMatchObject({
      algorithm: "none",
      threshold: 0.5,
      quorum: { type: "count", value: 0 },
    });
    expect(decision.voting.weights.size).toBe(0);
    expect(decision.objectionHandling).toEqual({
      criticalSeverityVetoes: false,
      vetoThreshold: 1,
      criticalObjectionAction: "deny",
    });
    expect(decision.evaluation).toEqual({ minimumConfidence: 0, requiredBeforeVoting: false });
    expect(decision.commitment).toEqual(DEFAULT_COMMITMENT_RULES);
    expect(parseProposalRules({})._unsafeUnwrap()).toMatchObject({
      acceptance: { criterion: "all_parties" },
      counterProposal: { maxRounds: 0 },
      rejection: { terminalOnAnyReject: false },
    });
    expect(parseTaskRules({})._unsafeUnwrap()).toMatchObject({
      assignment: { allowReassignmentOnReject: false },
      completion: { requireOutput: false },
    });
    expect(parseQuorumRules({})._unsafeUnwrap()).toMatchObject({
      threshold: { type: "n_of_m", value: 0 },
      abstention: { countsTowardQuorum: false, interpretation: "neutral" },
    });
    expect(parseHandoffRules({})._unsafeUnwrap().acceptance.implicitAcceptTimeoutMs).toBe(0);
  });

  it("ignores unknown keys and keeps enum-like strings free-form", () => {
    const parsed = parseDecisionRules({ extra: 1, voting: { algorithm: "coin", other: true } });
    expect(parsed._unsafeUnwrap().voting.algorithm).toBe("coin");
  });

  it("fails on wrong JSON types and on an unknown critical_objection_action", () => {
    expect(parseDecisionRules({ voting: { threshold: "0.5" } }).isErr()).toBe(true);
    expect(parseDecisionRules({ objection_handling: { veto_threshold: -1 } }).isErr()).toBe(true);
    expect(parseDecisionRules({ objection_handling: { veto_threshold: 1.5 } }).isErr()).toBe(true);
    expect(
      parseDecisionRules({ objection_handling: { critical_objection_action: "panic" } }).isErr(),
    ).toBe(true);
    expect(parseDecisionRules({ voting: { weights: { a: "heavy" } } }).isErr()).toBe(true);
    expect(parseDecisionRules({ commitment: { designated_roles: [1] } }).isErr()).toBe(true);
    expect(parseProposalRules({ counter_proposal: { max_rounds: 0.5 } }).isErr()).toBe(true);
  });

  it("never reads inherited properties", () => {
    const rules = JSON.parse('{"__proto__": {"algorithm": "majority"}}');
    expect(parseDecisionRules(rules)._unsafeUnwrap().voting.algorithm).toBe("none");
    expect(parseDecisionRules({ voting: {} })._unsafeUnwrap().voting.quorum.type).toBe("count");
    const weights = parseDecisionRules(JSON.parse('{"voting":{"weights":{"__proto__":2}}}'));
    expect(weights._unsafeUnwrap().voting.weights.get("__proto__")).toBe(2);
  });

  it("falls back to all defaults when rules cannot be read", () => {
    const rules = { acceptance: { criterion: "counterparty" }, rejection: "yes" };
    expect(rulesOrDefaults(parseProposalRules, rules).acceptance.criterion).toBe("all_parties");
    expect(commitmentRulesOrDefault({ commitment: { authority: 1 } })).toEqual(
      DEFAULT_COMMITMENT_RULES,
    );
  });
});

describe("reading a policy's rules once", () => {
  it("reuses what it read from rules that can never change", () => {
    let reads = 0;
    const read = memoizeByRules((rules) => {
      reads++;
      return parseDecisionRules(rules);
    });
    const frozen = frozenJsonCopy({ voting: { algorithm: "majority" } });
    const first = read(frozen);
    expect(read(frozen)).toBe(first);
    expect(reads).toBe(1);
    expect(first._unsafeUnwrap().voting.algorithm).toBe("majority");
  });

  it("reads mutable rules every time, so a change is never missed", () => {
    let reads = 0;
    const read = memoizeByRules((rules) => {
      reads++;
      return parseDecisionRules(rules);
    });
    const rules: { voting: { algorithm: string } } = { voting: { algorithm: "majority" } };
    expect(read(rules)._unsafeUnwrap().voting.algorithm).toBe("majority");
    rules.voting.algorithm = "unanimous";
    expect(read(rules)._unsafeUnwrap().voting.algorithm).toBe("unanimous");
    expect(reads).toBe(2);
    // Shallow freezing is not enough: nested values could still change.
    const shallow = Object.freeze({ voting: { algorithm: "majority" } });
    read(shallow);
    read(shallow);
    expect(reads).toBe(4);
  });

  it("gives the same answers cached and uncached", () => {
    const cases: JsonObject[] = [
      {},
      { commitment: { authority: "any_participant" } },
      { commitment: { authority: 1 } },
      { acceptance: { criterion: "counterparty" }, rejection: "yes" },
    ];
    for (const rules of cases) {
      const frozen = frozenJsonCopy(rules);
      expect(cachedCommitmentRules(frozen)).toEqual(commitmentRulesOrDefault(rules));
      expect(cachedCommitmentRules(frozen)).toBe(cachedCommitmentRules(frozen));
      expect(rulesOrDefaults(parseProposalRules, frozen)).toEqual(
        rulesOrDefaults(parseProposalRules, rules),
      );
    }
  });
});
