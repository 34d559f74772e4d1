// Shared by the package's tests.
import type { ClientHttp2Session } from "node:http2";

/** One GET on `client`: the body as text; rejects if the stream fails. */
export async function getText(client: ClientHttp2Session, path = "/"): Promise<string> {
  const request = client.request({ ":path": path });
  request.setEncoding("utf8");
  let body = "";
  for await (const chunk of request) body += chunk as string;
  return body;
}
