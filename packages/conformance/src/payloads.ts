import {
  create,
  type DescMessage,
  type MessageShape,
  ScalarType,
  toBinary,
} from "@bufbuild/protobuf";
import {
  CommitmentPayloadSchema,
  decision,
  handoff,
  multiRound,
  proposal,
  quorum,
  task,
} from "@macp/proto";

const schemas: DescMessage[] = [
  CommitmentPayloadSchema,
  ...[decision, handoff, multiRound, proposal, quorum, task].flatMap((module) =>
    Object.values(module).filter(
      (value): value is DescMessage =>
        typeof value === "object" && value !== null && (value as DescMessage).kind === "message",
    ),
  ),
];
const byName = new Map(schemas.map((schema) => [schema.typeName, schema]));

const utf8 = new TextEncoder();

/**
 * Encodes a vector payload the way the protocol's fixture harness does
 * (modes.md §0.8): bytes fields are empty except handoff `context` (UTF-8 of
 * the string), and a missing `outcome_positive` means true.
 */
export function encodeVectorPayload(
  payloadType: string,
  json: Record<string, unknown>,
): Uint8Array {
  const schema = byName.get(payloadType);
  if (schema === undefined) throw new Error(`unknown payload type ${payloadType}`);
  const message = buildMessage(schema, json);
  if (schema.typeName === CommitmentPayloadSchema.typeName && !("outcome_positive" in json)) {
    (message as MessageShape<typeof CommitmentPayloadSchema>).outcomePositive = true;
  }
  return toBinary(schema, message);
}

function buildMessage(schema: DescMessage, json: Record<string, unknown>) {
  const init: Record<string, unknown> = {};
  for (const field of schema.fields) {
    const value = json[field.name];
    if (value === undefined || value === null) continue;
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.BYTES) {
      init[field.localName] =
        field.name === "context" && typeof value === "string"
          ? utf8.encode(value)
          : new Uint8Array(0);
    } else if (field.fieldKind === "message") {
      init[field.localName] = buildMessage(field.message, value as Record<string, unknown>);
    } else if (field.fieldKind === "list") {
      init[field.localName] = [];
    } else if (field.fieldKind === "scalar" && field.scalar === ScalarType.INT64) {
      init[field.localName] = BigInt(value as number);
    } else {
      init[field.localName] = value;
    }
  }
  return create(schema, init);
}
