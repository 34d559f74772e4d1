import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import pg from "pg";

/** A PostgreSQL server in a temporary directory, for tests and benchmarks. */
export interface ThrowawayPostgres {
  /** A libpq URL for the `macp` database, loopback only, no password. */
  readonly url: string;
  readonly port: number;
  /** Creates another empty database on the same server and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (immediate shutdown) and deletes its directory. */
  stop(): Promise<void>;
}

export interface ThrowawayPostgresOptions {
  /**
   * Keep PostgreSQL's fsync on, as in production (benchmarks). Default false:
   * tests kill runtime instances, never the database, so they do not need it.
   */
  readonly durable?: boolean;
}

const DATABASE = "macp";
const SUPERUSER = "macp";

/**
 * Finds the server binaries: `MACP_POSTGRES_BIN`, then Debian's
 * /usr/lib/postgresql/<version>/bin (newest first), then PATH. Throws when there
 * are none, so a test that needs PostgreSQL fails instead of silently skipping.
 */
export function findPostgresBinaries(): string {
  const candidates: string[] = [];
  const fromEnv = process.env.MACP_POSTGRES_BIN;
  if (fromEnv) candidates.push(fromEnv);
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((name) => /^\d+$/.test(name))
      .sort((a, b) => Number(b) - Number(a));
    for (const version of versions) candidates.push(join(debian, version, "bin"));
  }
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir) candidates.push(dir);
  for (const dir of candidates) {
    if (existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"))) return dir;
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, postgres) not found: install Debian's `postgresql` package or set MACP_POSTGRES_BIN",
  );
}

/**
 * Starts a throw-away PostgreSQL cluster: initdb in a new temporary directory,
 * listening on 127.0.0.1 at a free port with trust authentication. As root it
 * runs as the `postgres` user (PostgreSQL refuses to run as root).
 */
export async function startThrowawayPostgres(
  options: ThrowawayPostgresOptions = {},
): Promise<ThrowawayPostgres> {
  const bin = findPostgresBinaries();
  const dir = mkdtempSync(join(tmpdir(), "macp-pg-"));
  const dataDir = join(dir, "data");
  const runAs = userInfo().uid === 0 ? postgresUser() : undefined;
  if (runAs) {
    chownSync(dir, runAs.uid, runAs.gid);
    chmodSync(dir, 0o700);
  }
  const as = runAs ?? {};
  execFileSync(
    join(bin, "initdb"),
    ["-D", dataDir, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-instructions"],
    { stdio: "pipe", ...as },
  );
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const server = spawnServer(
      join(bin, "postgres"),
      as,
      dataDir,
      dir,
      port,
      options.durable ?? false,
    );
    const ready = await waitReady(server, bin, port);
    if (ready === "ready") {
      execFileSync(
        join(bin, "createdb"),
        ["-h", "127.0.0.1", "-p", String(port), "-U", SUPERUSER, DATABASE],
        {
          stdio: "pipe",
        },
      );
      return {
        url: `postgres://${SUPERUSER}@127.0.0.1:${port}/${DATABASE}`,
        port,
        async createDatabase(name) {
          const client = new pg.Client({
            host: "127.0.0.1",
            port,
            user: SUPERUSER,
            database: DATABASE,
          });
          await client.connect();
          try {
            await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
          } finally {
            await client.end();
          }
          return `postgres://${SUPERUSER}@127.0.0.1:${port}/${name}`;
        },
        stop: () => stopServer(server, dir),
      };
    }
    server.kill("SIGKILL");
    if (attempt >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`PostgreSQL did not start: ${ready}`);
    }
  }
}

function postgresUser(): { uid: number; gid: number } {
  const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
  return { uid, gid };
}

function spawnServer(
  postgres: string,
  as: { uid?: number; gid?: number },
  dataDir: string,
  socketDir: string,
  port: number,
  durable: boolean,
): ChildProcess {
  const settings = [
    "listen_addresses=127.0.0.1",
    `port=${port}`,
    `unix_socket_directories=${socketDir}`,
    "max_connections=200",
    ...(durable ? [] : ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]),
  ];
  const args = ["-D", dataDir, ...settings.flatMap((s) => ["-c", s])];
  const child = spawn(postgres, args, { stdio: ["ignore", "ignore", "pipe"], ...as });
  // Keeps the log readable if start-up fails; later output is discarded.
  child.stderr?.setEncoding("utf8");
  return child;
}

async function waitReady(
  server: ChildProcess,
  bin: string,
  port: number,
): Promise<"ready" | string> {
  let log = "";
  server.stderr?.on("data", (chunk: string) => {
    if (log.length < 4000) log += chunk;
  });
  for (let i = 0; i < 200; i++) {
    if (server.exitCode !== null) return `exited with ${server.exitCode}: ${log}`;
    try {
      execFileSync(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-q"], {
        stdio: "ignore",
      });
      return "ready";
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return `not ready after 20 s: ${log}`;
}

async function stopServer(server: ChildProcess, dir: string): Promise<void> {
  if (server.exitCode === null && server.signalCode === null) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    // SIGQUIT is PostgreSQL's immediate shutdown: nothing to keep.
    server.kill("SIGQUIT");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
  }
  rmSync(dir, { recursive: true, force: true });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
