import type { Result } from "neverthrow";
import type { JsonObject } from "../../json.js";
import { type CommitmentRules, RuleReader } from "../../policy/policy-rules.js";
import { type PolicyRulesCheck, schemaRulesCheck } from "../../policy/rules-validation.js";
import { proposalRulesSchema } from "./proposal-rules-schema.js";

// The typed view of a proposal policy's `rules` object (modes.md §9.10).

export interface ProposalRules {
  /** "all_parties" (default), "counterparty", "initiator"; anything else acts as all_parties. */
  readonly acceptance: { readonly criterion: string };
  /** 0 = unlimited. */
  readonly counterProposal: { readonly maxRounds: number };
  readonly rejection: { readonly terminalOnAnyReject: boolean };
  readonly commitment: CommitmentRules;
}

export function parseProposalRules(rules: JsonObject): Result<ProposalRules, string> {
  const reader = new RuleReader();
  const acceptance = reader.section(rules, "acceptance", "");
  const counter = reader.section(rules, "counter_proposal", "");
  const rejection = reader.section(rules, "rejection", "");
  return reader.finish<ProposalRules>({
    acceptance: { criterion: reader.string(acceptance, "criterion", "acceptance.", "all_parties") },
    counterProposal: {
      maxRounds: reader.unsigned(counter, "max_rounds", "counter_proposal.", 0),
    },
    rejection: {
      terminalOnAnyReject: reader.bool(rejection, "terminal_on_any_reject", "rejection.", false),
    },
    commitment: reader.commitment(rules),
  });
}

/** How a policy for this mode is checked at registration (modes.md §9.5 steps 5–6). */
export const proposalPolicyRules: PolicyRulesCheck = schemaRulesCheck(
  "proposal",
  proposalRulesSchema,
  parseProposalRules,
);
