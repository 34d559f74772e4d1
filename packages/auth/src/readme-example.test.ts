// The README's examples, run as written (with the environment and the output
// captured), so the documentation cannot drift from the code.
import { createIdentity } from "@macp/core";
import { describe, expect, it } from "vitest";
import { createAuthenticator, parseStaticTokens } from "./index.js";

describe("README", () => {
  it("configured in code", async () => {
    const tokens = parseStaticTokens(
      JSON.stringify([
        { token: "ops-token", sender: "agent://ops", can_manage_mode_registry: true },
      ]),
    );
    if (!tokens.ok) throw new Error(tokens.error);

    const authenticator = createAuthenticator({
      jwt: {
        issuer: "https://login.example.com/",
        audience: "macp-runtime",
        algorithms: ["RS256", "ES256"],
        jwks: { url: "https://login.example.com/.well-known/jwks.json", ttlSeconds: 300 },
      },
      staticTokens: tokens.value,
    });
    expect(authenticator.resolvers).toEqual(["jwt_bearer", "static_bearer"]);
    // An opaque token never reaches the JWT resolver, so no JWKS is fetched here.
    expect(await authenticator.authenticate({ authorization: "Bearer ops-token" })).toEqual(
      createIdentity({ sender: "agent://ops", canManageModeRegistry: true }),
    );
    authenticator.close();
  });
});
