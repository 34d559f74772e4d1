import { err, ok, type Result } from "neverthrow";
import type { JsonObject } from "../../json.js";
import { type CommitmentRules, RuleReader } from "../../policy/policy-rules.js";
import { type PolicyRulesCheck, schemaRulesCheck } from "../../policy/rules-validation.js";
import { decisionRulesSchema } from "./decision-rules-schema.js";

// The typed view of a decision policy's `rules` object (modes.md §9.9).

export type CriticalObjectionAction = "deny" | "finalize_decline" | "hold";

export interface DecisionRules {
  readonly voting: {
    readonly algorithm: string;
    readonly threshold: number;
    readonly quorum: { readonly type: string; readonly value: number };
    /** Voter id → weight; a voter missing from the map weighs 1. */
    readonly weights: ReadonlyMap<string, number>;
  };
  readonly objectionHandling: {
    readonly criticalSeverityVetoes: boolean;
    readonly vetoThreshold: number;
    readonly criticalObjectionAction: CriticalObjectionAction;
  };
  readonly evaluation: {
    readonly minimumConfidence: number;
    readonly requiredBeforeVoting: boolean;
  };
  readonly commitment: CommitmentRules;
}

export function parseDecisionRules(rules: JsonObject): Result<DecisionRules, string> {
  const reader = new RuleReader();
  const voting = reader.section(rules, "voting", "");
  const quorum = reader.section(voting, "quorum", "voting.");
  const objections = reader.section(rules, "objection_handling", "");
  const evaluation = reader.section(rules, "evaluation", "");
  return reader.finish<DecisionRules>({
    voting: {
      algorithm: reader.string(voting, "algorithm", "voting.", "none"),
      threshold: reader.number(voting, "threshold", "voting.", 0.5),
      quorum: {
        type: reader.string(quorum, "type", "voting.quorum.", "count"),
        value: reader.number(quorum, "value", "voting.quorum.", 0),
      },
      weights: reader.numberMap(voting, "weights", "voting."),
    },
    objectionHandling: {
      criticalSeverityVetoes: reader.bool(
        objections,
        "critical_severity_vetoes",
        "objection_handling.",
        false,
      ),
      vetoThreshold: reader.unsigned(objections, "veto_threshold", "objection_handling.", 1),
      criticalObjectionAction: reader.oneOf(
        objections,
        "critical_objection_action",
        "objection_handling.",
        ["deny", "finalize_decline", "hold"],
        "deny",
      ),
    },
    evaluation: {
      minimumConfidence: reader.number(evaluation, "minimum_confidence", "evaluation.", 0),
      requiredBeforeVoting: reader.bool(evaluation, "required_before_voting", "evaluation.", false),
    },
    commitment: reader.commitment(rules),
  });
}

/** How a policy for this mode is checked at registration (modes.md §9.5 steps 5–6). */
export const decisionPolicyRules: PolicyRulesCheck = schemaRulesCheck(
  "decision",
  decisionRulesSchema,
  parseDecisionRules,
  (rules) => {
    const { algorithm, threshold, weights } = rules.voting;
    if (algorithm === "weighted" && weights.size === 0) {
      return err("voting.algorithm 'weighted' requires non-empty voting.weights");
    }
    // The default threshold (0.5) fails this too, so supermajority must name its threshold.
    if (algorithm === "supermajority" && !(threshold > 0.5)) {
      return err("voting.algorithm 'supermajority' requires voting.threshold > 0.5");
    }
    return ok(undefined);
  },
);
