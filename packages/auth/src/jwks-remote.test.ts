import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Identity, isAuthenticated } from "@macp/core";
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Authenticator, createAuthenticator, type RemoteJwks } from "./index.js";

const ISSUER = "https://issuer.test";
const TTL_SECONDS = 300;
const GRACE_SECONDS = 3600;

interface Signer {
  readonly key: CryptoKey;
  readonly kid: string;
  readonly jwk: JWK;
}

async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  return { key: privateKey, kid, jwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256" } };
}

let first: Signer;
let second: Signer;

beforeAll(async () => {
  first = await signer("key-1");
  second = await signer("key-2");
});

/** A JWKS endpoint on 127.0.0.1 that counts its requests and can be changed or stopped. */
class JwksServer {
  requests = 0;
  body: unknown = { keys: [] };
  status = 200;
  /** Held-back responses, released by {@link release}, so concurrent callers overlap. */
  private held: (() => void)[] = [];
  private holding = false;
  private readonly server: Server;

  private constructor(server: Server) {
    this.server = server;
  }

  static async start(body: unknown): Promise<JwksServer> {
    let instance: JwksServer | undefined;
    const server = createServer((_request, response) => {
      const self = instance!;
      self.requests += 1;
      const respond = () => {
        response.writeHead(self.status, { "content-type": "application/json" });
        response.end(typeof self.body === "string" ? self.body : JSON.stringify(self.body));
      };
      if (self.holding) self.held.push(respond);
      else respond();
    });
    instance = new JwksServer(server);
    instance.body = body;
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return instance;
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/.well-known/jwks.json`;
  }

  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    for (const respond of this.held.splice(0)) respond();
  }

  async stop(): Promise<void> {
    if (!this.server.listening) return;
    // Drop keep-alive sockets too, or the client could keep talking to a "stopped" server.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}

const servers: JwksServer[] = [];
const authenticators: Authenticator[] = [];

afterEach(async () => {
  for (const authenticator of authenticators.splice(0)) authenticator.close();
  await Promise.all(servers.splice(0).map((server) => server.stop()));
});

async function serving(keys: JWK[]): Promise<JwksServer> {
  const server = await JwksServer.start({ keys });
  servers.push(server);
  return server;
}

/** A settable clock, so TTL and grace periods pass without sleeping. */
function manualClock() {
  let now = Date.parse("2030-01-01T00:00:00Z");
  return {
    now: () => now,
    advanceSeconds(seconds: number) {
      now += seconds * 1000;
    },
  };
}

function remoteAuthenticator(
  server: JwksServer,
  clock: { now(): number },
  jwks: Partial<RemoteJwks> = {},
): Authenticator {
  const authenticator = createAuthenticator({
    jwt: { issuer: ISSUER, jwks: { url: server.url, ttlSeconds: TTL_SECONDS, ...jwks } },
    clock,
  });
  authenticators.push(authenticator);
  return authenticator;
}

function tokenFrom(signing: Signer, clock: { now(): number }): Promise<string> {
  // Valid for a day, so moving the clock through TTL and grace never expires it
  // (except where a test moves beyond that on purpose).
  const issuedAt = Math.floor(clock.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid: signing.kid })
    .setIssuer(ISSUER)
    .setAudience("macp-runtime")
    .setSubject(`agent://${signing.kid}`)
    .setExpirationTime(issuedAt + 2 * 86_400)
    .sign(signing.key);
}

async function authenticate(authenticator: Authenticator, jwt: string) {
  return authenticator.authenticate({ authorization: `Bearer ${jwt}` });
}

async function reasonFor(authenticator: Authenticator, jwt: string): Promise<string> {
  const caller = await authenticate(authenticator, jwt);
  if (isAuthenticated(caller)) throw new Error(`unexpectedly authenticated as ${caller.sender}`);
  return caller.unauthenticated;
}

async function identityFor(authenticator: Authenticator, jwt: string): Promise<Identity> {
  const caller = await authenticate(authenticator, jwt);
  if (!isAuthenticated(caller)) throw new Error(caller.unauthenticated);
  return caller;
}

describe("JWKS from a URL refuses", () => {
  it("every JWT while the endpoint has never answered", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    await server.stop();
    expect(await reasonFor(authenticator, await tokenFrom(first, clock))).toMatch(
      /^jwt_bearer: cannot fetch the JWKS from http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json/,
    );
  });

  it("a JWKS answered with an HTTP error, with no keys, or with non-JSON", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const jwt = await tokenFrom(first, clock);
    server.status = 503;
    expect(await reasonFor(remoteAuthenticator(server, clock), jwt)).toMatch(/HTTP 503$/);
    server.status = 200;
    server.body = { keys: [] };
    expect(await reasonFor(remoteAuthenticator(server, clock), jwt)).toMatch(/no usable/);
    server.body = "<html>";
    expect(await reasonFor(remoteAuthenticator(server, clock), jwt)).toMatch(/not JSON/);
  });

  it("every JWT once stale keys are older than TTL + grace", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    const jwt = await tokenFrom(first, clock);
    expect(await identityFor(authenticator, jwt)).toMatchObject({ sender: "agent://key-1" });
    await server.stop();
    clock.advanceSeconds(TTL_SECONDS + GRACE_SECONDS);
    expect(await reasonFor(authenticator, jwt)).toMatch(/cannot fetch the JWKS/);
  });

  it("everything once closed", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    const jwt = await tokenFrom(first, clock);
    server.hold();
    const pending = authenticate(authenticator, jwt);
    await waitFor(() => server.requests === 1);
    authenticator.close();
    expect(await pending).toEqual({ unauthenticated: "jwt_bearer: the authenticator is closed" });
    expect(await reasonFor(authenticator, jwt)).toMatch(/closed/);
    server.release();
  });
});

describe("JWKS from a URL", () => {
  it("is fetched lazily, on the first JWT", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    expect(server.requests).toBe(0);
    await authenticator.authenticate({ authorization: "Bearer opaque-token" });
    expect(server.requests).toBe(0);
    await identityFor(authenticator, await tokenFrom(first, clock));
    expect(server.requests).toBe(1);
  });

  it("is cached for the TTL and fetched again after it", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    const jwt = await tokenFrom(first, clock);
    await identityFor(authenticator, jwt);
    clock.advanceSeconds(TTL_SECONDS - 1);
    await identityFor(authenticator, jwt);
    await identityFor(authenticator, jwt);
    expect(server.requests).toBe(1);
    clock.advanceSeconds(1);
    await identityFor(authenticator, jwt);
    expect(server.requests).toBe(2);
  });

  it("shares one fetch among concurrent callers", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    const jwt = await tokenFrom(first, clock);
    server.hold();
    const callers = Array.from({ length: 8 }, () => authenticate(authenticator, jwt));
    await waitFor(() => server.requests === 1);
    server.release();
    const identities = await Promise.all(callers);
    expect(identities.every(isAuthenticated)).toBe(true);
    expect(server.requests).toBe(1);

    // The same holds for a refresh after the TTL.
    clock.advanceSeconds(TTL_SECONDS);
    server.hold();
    const refreshing = Array.from({ length: 8 }, () => authenticate(authenticator, jwt));
    await waitFor(() => server.requests === 2);
    server.release();
    expect((await Promise.all(refreshing)).every(isAuthenticated)).toBe(true);
    expect(server.requests).toBe(2);
  });

  it("keeps serving stale keys within the grace period while the endpoint is down", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    const jwt = await tokenFrom(first, clock);
    await identityFor(authenticator, jwt);
    await server.stop();
    clock.advanceSeconds(TTL_SECONDS + 1);
    expect(await identityFor(authenticator, jwt)).toMatchObject({ sender: "agent://key-1" });
    clock.advanceSeconds(GRACE_SECONDS - 2);
    expect(await identityFor(authenticator, jwt)).toMatchObject({ sender: "agent://key-1" });
  });

  it("keeps serving stale keys while the endpoint answers with errors, then recovers", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    const jwt = await tokenFrom(first, clock);
    await identityFor(authenticator, jwt);
    server.status = 500;
    clock.advanceSeconds(TTL_SECONDS);
    await identityFor(authenticator, jwt);
    expect(server.requests).toBe(2);
    server.status = 200;
    server.body = { keys: [second.jwk] };
    await identityFor(authenticator, await tokenFrom(second, clock));
    expect(server.requests).toBe(3);
    // The recovered document replaced the old one.
    expect(await reasonFor(authenticator, jwt)).toBe("jwt_bearer: invalid signature");
  });

  it("picks the key named by kid, and learns rotated keys only at the next refresh", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock);
    expect(await identityFor(authenticator, await tokenFrom(first, clock))).toMatchObject({
      sender: "agent://key-1",
    });
    server.body = { keys: [first.jwk, second.jwk] };
    const rotated = await tokenFrom(second, clock);
    // An unknown kid does not force a refresh: every key is tried and none fits.
    expect(await reasonFor(authenticator, rotated)).toBe("jwt_bearer: invalid signature");
    expect(server.requests).toBe(1);
    clock.advanceSeconds(TTL_SECONDS);
    expect(await identityFor(authenticator, rotated)).toMatchObject({ sender: "agent://key-2" });
    expect(await identityFor(authenticator, await tokenFrom(first, clock))).toMatchObject({
      sender: "agent://key-1",
    });
    expect(server.requests).toBe(2);
  });

  it("fetches for every token when the TTL is 0", async () => {
    const server = await serving([first.jwk]);
    const clock = manualClock();
    const authenticator = remoteAuthenticator(server, clock, { ttlSeconds: 0 });
    const jwt = await tokenFrom(first, clock);
    await identityFor(authenticator, jwt);
    await identityFor(authenticator, jwt);
    expect(server.requests).toBe(2);
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    if (condition()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error("condition never became true");
}
