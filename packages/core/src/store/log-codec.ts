import {
  fromBinary,
  fromJson,
  type JsonValue as PbJson,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { EnvelopeSchema, ModeDescriptorSchema } from "@macp/proto";
import { err, ok, type Result } from "neverthrow";
import { isJsonObject } from "../json.js";
import { frozenJsonCopy } from "../policy/frozen-json.js";
import type { InternalRecordType, LogRecord, SessionBinding } from "./log-record.js";

// A compact binary form of one log record, shared by every durable store so a
// new backend only moves bytes. Layout (little-endian):
//   u8 format version (1) | u8 kind (1 incoming, 2 internal) | f64 receivedAtMs
//   incoming: u32 len + Envelope protobuf | u32 len + binding JSON (0 = none)
//   internal: u8 type | u32 len + payload
const FORMAT_VERSION = 1;
const INTERNAL_TYPES: readonly InternalRecordType[] = [
  "TtlExpired",
  "SessionCancel",
  "SessionSuspend",
  "SessionResume",
];
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export function encodeLogRecord(record: LogRecord): Uint8Array {
  if (record.kind === "internal") {
    const out = new Uint8Array(2 + 8 + 1 + 4 + record.payload.length);
    const view = new DataView(out.buffer);
    out[0] = FORMAT_VERSION;
    out[1] = 2;
    view.setFloat64(2, record.receivedAtMs, true);
    out[10] = INTERNAL_TYPES.indexOf(record.type);
    view.setUint32(11, record.payload.length, true);
    out.set(record.payload, 15);
    return out;
  }
  const envelope = toBinary(EnvelopeSchema, record.envelope);
  const binding = record.binding
    ? utf8.encode(JSON.stringify(bindingToJson(record.binding)))
    : null;
  const bindingLength = binding?.length ?? 0;
  const out = new Uint8Array(2 + 8 + 4 + envelope.length + 4 + bindingLength);
  const view = new DataView(out.buffer);
  out[0] = FORMAT_VERSION;
  out[1] = 1;
  view.setFloat64(2, record.receivedAtMs, true);
  view.setUint32(10, envelope.length, true);
  out.set(envelope, 14);
  view.setUint32(14 + envelope.length, bindingLength, true);
  if (binding) out.set(binding, 18 + envelope.length);
  return out;
}

export function decodeLogRecord(bytes: Uint8Array): Result<LogRecord, string> {
  try {
    if (bytes.length < 10) return err("record too short");
    if (bytes[0] !== FORMAT_VERSION) return err(`unknown record format ${bytes[0]}`);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const receivedAtMs = view.getFloat64(2, true);
    if (bytes[1] === 2) {
      const type = INTERNAL_TYPES[bytes[10] ?? 255];
      if (type === undefined) return err(`unknown internal record type ${bytes[10]}`);
      const length = view.getUint32(11, true);
      if (15 + length !== bytes.length) return err("internal record length mismatch");
      return ok({ kind: "internal", type, receivedAtMs, payload: bytes.slice(15) });
    }
    if (bytes[1] !== 1) return err(`unknown record kind ${bytes[1]}`);
    const envelopeLength = view.getUint32(10, true);
    const bindingAt = 14 + envelopeLength;
    if (bindingAt + 4 > bytes.length) return err("incoming record truncated");
    const envelope = fromBinary(EnvelopeSchema, bytes.subarray(14, bindingAt));
    const bindingLength = view.getUint32(bindingAt, true);
    if (bindingAt + 4 + bindingLength !== bytes.length)
      return err("incoming record length mismatch");
    if (bindingLength === 0) return ok({ kind: "incoming", envelope, receivedAtMs });
    const json: unknown = JSON.parse(
      fromUtf8.decode(bytes.subarray(bindingAt + 4, bindingAt + 4 + bindingLength)),
    );
    const binding = bindingFromJson(json);
    if (binding === undefined) return err("malformed session binding");
    return ok({ kind: "incoming", envelope, receivedAtMs, binding });
  } catch (cause) {
    return err(`undecodable record: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

function bindingToJson(binding: SessionBinding): Record<string, unknown> {
  return { ...binding, modeDescriptor: toJson(ModeDescriptorSchema, binding.modeDescriptor) };
}

function bindingFromJson(json: unknown): SessionBinding | undefined {
  if (!isJsonObject(json)) return undefined;
  const { modeVersion, policy, modeDescriptor, strict, expiresAtMs, maxSuspendMs, semanticsRev } =
    json;
  if (
    typeof modeVersion !== "string" ||
    !isJsonObject(policy) ||
    !isJsonObject(policy.rules) ||
    typeof strict !== "boolean" ||
    typeof expiresAtMs !== "number" ||
    typeof maxSuspendMs !== "number" ||
    typeof semanticsRev !== "number"
  ) {
    return undefined;
  }
  return {
    modeVersion,
    policy: {
      policyId: String(policy.policyId),
      mode: String(policy.mode),
      description: String(policy.description),
      // Frozen like a registered policy's rules, so they are parsed once per session.
      rules: frozenJsonCopy(policy.rules),
      schemaVersion: Number(policy.schemaVersion),
      registeredAtUnixMs: Number(policy.registeredAtUnixMs),
    },
    modeDescriptor: fromJson(ModeDescriptorSchema, modeDescriptor as PbJson),
    strict,
    expiresAtMs,
    maxSuspendMs,
    semanticsRev,
  };
}
