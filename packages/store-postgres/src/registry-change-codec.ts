import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { RegistryChange } from "@macp/core";
import { ModeDescriptorSchema, PolicyDescriptorSchema } from "@macp/proto";

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** JSON with the descriptors in their protobuf JSON form. */
export function encodeRegistryChange(change: RegistryChange): Uint8Array {
  let json: Record<string, JsonValue>;
  switch (change.kind) {
    case "registerPolicy":
      json = {
        kind: change.kind,
        descriptor: toJson(PolicyDescriptorSchema, change.descriptor),
        registeredAtMs: change.registeredAtMs,
      };
      break;
    case "registerMode":
      json = { kind: change.kind, descriptor: toJson(ModeDescriptorSchema, change.descriptor) };
      break;
    default:
      json = { ...change };
  }
  return utf8.encode(JSON.stringify(json));
}

export function decodeRegistryChange(bytes: Uint8Array): RegistryChange {
  const json = JSON.parse(fromUtf8.decode(bytes)) as Record<string, JsonValue>;
  switch (json.kind) {
    case "registerPolicy":
      return {
        kind: "registerPolicy",
        descriptor: fromJson(PolicyDescriptorSchema, json.descriptor ?? null),
        registeredAtMs: Number(json.registeredAtMs),
      };
    case "unregisterPolicy":
      return { kind: "unregisterPolicy", policyId: String(json.policyId) };
    case "registerMode":
      return {
        kind: "registerMode",
        descriptor: fromJson(ModeDescriptorSchema, json.descriptor ?? null),
      };
    case "unregisterMode":
      return { kind: "unregisterMode", mode: String(json.mode) };
    case "promoteMode":
      return {
        kind: "promoteMode",
        mode: String(json.mode),
        promotedName: String(json.promotedName),
      };
    default:
      throw new Error(`unknown registry change ${String(json.kind)}`);
  }
}
