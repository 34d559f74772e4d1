import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import type { SessionMetadata } from "@macp/proto";
import { payloadSchemaOf } from "../src/payload-schemas.js";
import { uuidV4 } from "./format.js";

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * A payload to start editing from: every field of the message type's schema
 * at its zero value, with the echoes a Commitment needs already filled in.
 */
export function payloadTemplate(
  mode: string,
  messageType: string,
  session: SessionMetadata | undefined,
): string {
  const schema = payloadSchemaOf(mode, messageType);
  if (schema === undefined) return "{}";
  const template = zeroOf(schema);
  if (messageType === "Commitment" && session !== undefined) {
    template.commitmentId = uuidV4();
    template.modeVersion = session.modeVersion;
    template.configurationVersion = session.configurationVersion;
    template.policyVersion = session.policyVersion;
    template.outcomePositive = true;
    delete template.supersedes;
  }
  return JSON.stringify(template, null, 2);
}

function zeroOf(schema: DescMessage): { [key: string]: Json } {
  const value: { [key: string]: Json } = {};
  for (const field of schema.fields) value[field.jsonName] = zeroOfField(field);
  return value;
}

function zeroOfField(field: DescField): Json {
  switch (field.fieldKind) {
    case "list":
      return [];
    case "map":
    case "message":
      return {};
    case "enum":
      return field.enum.values[0]?.name ?? 0;
    case "scalar":
      switch (field.scalar) {
        case ScalarType.STRING:
        case ScalarType.BYTES:
          return "";
        case ScalarType.BOOL:
          return false;
        default:
          return 0;
      }
  }
}
