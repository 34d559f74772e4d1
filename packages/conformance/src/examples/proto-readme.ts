// This file is shown verbatim in packages/proto/README.md (test/readme-examples.test.ts checks it).
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InitializeRequestSchema, MACPRuntimeService } from "@macp/proto";

export async function initialize(baseUrl = "http://127.0.0.1:50051") {
  const client = createClient(MACPRuntimeService, createGrpcTransport({ baseUrl }));
  const response = await client.initialize(
    create(InitializeRequestSchema, { supportedProtocolVersions: ["1.0"] }),
  );
  return response.selectedProtocolVersion; // "1.0"
}
