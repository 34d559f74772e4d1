import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { ServiceDefinition } from "@grpc/grpc-js";

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function serializer(schema: DescMessage): (value: MessageInitShape<DescMessage>) => Buffer {
  // Handlers answer with init shapes (plain objects); create() returns a message as is.
  return (value) => asBuffer(toBinary(schema, create(schema, value)));
}

function deserializer(schema: DescMessage): (bytes: Buffer) => unknown {
  return (bytes) => fromBinary(schema, bytes);
}

/**
 * A grpc-js service definition built from a protobuf-es service descriptor:
 * one entry per method, keyed by its local name (`send`, `streamSession`),
 * with the gRPC path `/<package>.<Service>/<Method>` and protobuf-es binary
 * (de)serialisation, so no .proto file is loaded at run time. Requests arrive
 * as protobuf-es messages; handlers may answer with a message or its init shape.
 */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, ServiceDefinition[string]> = {};
  for (const method of service.methods) {
    const kind = method.methodKind;
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: kind === "client_streaming" || kind === "bidi_streaming",
      responseStream: kind === "server_streaming" || kind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: deserializer(method.output),
      originalName: method.name,
    };
  }
  return definition;
}
