import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Where `npm run build` puts the page bundle (the same path from src/ and dist/). */
export const INSPECTOR_BUNDLE_DIR = fileURLToPath(new URL("../dist/ui/", import.meta.url));

/** The part of a Node HTTP/1.1 or HTTP/2 request the page handler reads. */
export interface PageRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
}

/** The part of a Node HTTP/1.1 or HTTP/2 response the page handler writes. */
export interface PageResponse {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: Uint8Array): unknown;
}

export interface InspectorPageOptions {
  /** URL path the page is served under. Default "/inspector". */
  readonly basePath?: string;
  /** The built bundle. Default {@link INSPECTOR_BUNDLE_DIR}. */
  readonly directory?: string;
}

/** Serves the inspector page; answers false for requests outside its path. */
export type InspectorPageHandler = (request: PageRequest, response: PageResponse) => boolean;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};

const EMPTY = new Uint8Array(0);

// The page talks only to its own origin and loads nothing from elsewhere.
const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * A request handler for the inspector page. The bundle is read into memory
 * once, here, so only files that exist in it can ever be served (no path
 * handling at request time). Throws if the bundle has not been built.
 */
export function createInspectorPage(options: InspectorPageOptions = {}): InspectorPageHandler {
  const basePath = (options.basePath ?? "/inspector").replace(/\/+$/, "");
  const directory = options.directory ?? INSPECTOR_BUNDLE_DIR;
  const index = join(directory, "index.html");
  if (!existsSync(index)) {
    throw new Error(`the inspector page is not built (no ${index}); run \`npm run build\``);
  }
  const files = new Map<string, { body: Uint8Array; type: string }>();
  for (const path of listFiles(directory)) {
    const urlPath = relative(directory, path).split(sep).join("/");
    files.set(urlPath, {
      body: readFileSync(path),
      type: CONTENT_TYPES[extname(path)] ?? "application/octet-stream",
    });
  }

  return (request, response) => {
    const path = (request.url ?? "").split(/[?#]/, 1)[0] ?? "";
    if (path !== basePath && !path.startsWith(`${basePath}/`)) return false;
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD" });
      response.end(EMPTY);
      return true;
    }
    // Relative asset URLs in the page resolve against the trailing slash.
    if (path === basePath) {
      response.writeHead(308, { location: `${basePath}/` });
      response.end(EMPTY);
      return true;
    }
    const name = path.slice(basePath.length + 1) || "index.html";
    const file = files.get(name);
    if (file === undefined) {
      response.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      response.end(new TextEncoder().encode("not found\n"));
      return true;
    }
    response.writeHead(200, {
      "content-type": file.type,
      "content-length": String(file.body.length),
      // Asset names carry a content hash; the page itself must be revalidated.
      "cache-control": name.startsWith("assets/")
        ? "public, max-age=31536000, immutable"
        : "no-cache",
      ...SECURITY_HEADERS,
    });
    response.end(request.method === "HEAD" ? EMPTY : file.body);
    return true;
  };
}

function listFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}
