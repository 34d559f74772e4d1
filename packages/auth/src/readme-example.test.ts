// The README's examples, run as written (with the environment and the output
// captured), so the documentation cannot drift from the code.
import { createIdentity, isAuthenticated } from "@macp/core";
import { describe, expect, it } from "vitest";
import { authConfigFromEnv, createAuthenticator, parseStaticTokens } from "./index.js";

describe("README", () => {
  it("configured from the environment", async () => {
    const env = {
      MACP_AUTH_TOKENS_JSON: '{"tokens":[{"token":"alice-token","sender":"alice"}]}',
    };
    const printed: string[] = [];

    const config = authConfigFromEnv(env);
    if (!config.ok) {
      throw new Error(config.errors.map((error) => error.message).join("\n"));
    }
    expect(config.value.warnings).toEqual([]);

    const authenticator = createAuthenticator(config.value.options);
    const caller = await authenticator.authenticate(
      new Headers({ authorization: "Bearer alice-token" }),
    );
    printed.push(isAuthenticated(caller) ? caller.sender : `refused: ${caller.unauthenticated}`);
    authenticator.close();

    expect(printed).toEqual(["alice"]);
  });

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
