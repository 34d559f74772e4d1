import { cors as connectCors } from "@connectrpc/connect";
import cors from "cors";
import { ERROR_DETAILS_TRAILER } from "../wire-errors.js";
import type { NodeRequestListener } from "./plaintext-server.js";

/** Cross-origin access for browser clients (gRPC-Web and Connect from a page). */
export interface MacpCorsOptions {
  /**
   * Origins whose pages may call the server, exactly as browsers send them
   * (`https://console.example.com`, scheme and port included). `"*"` allows
   * any origin. Requests from other origins get no `access-control-allow-origin`
   * header, so the browser refuses to hand the response to the page.
   */
  readonly allowedOrigins: readonly string[];
  /** How long browsers may cache a preflight answer, in seconds. Default 7200 (Chromium's cap). */
  readonly maxAgeSeconds?: number;
}

/** The request headers MACP clients send besides the protocols' own (see @macp/auth). */
const MACP_REQUEST_HEADERS = ["Authorization", "X-Macp-Token"];

/**
 * Answers CORS preflights itself and adds the CORS headers to every other
 * response, then calls `next`. The allowed methods and headers are the ones
 * Connect, gRPC-Web and MACP's credentials need; the exposed headers let a page
 * read gRPC-Web's status (`grpc-status`, `grpc-message`, …) and MACP's error
 * details.
 */
export function createCorsHandler(
  options: MacpCorsOptions,
): (...args: [...Parameters<NodeRequestListener>, next: () => void]) => void {
  const anyOrigin = options.allowedOrigins.includes("*");
  const middleware = cors({
    origin: anyOrigin ? "*" : [...options.allowedOrigins],
    methods: [...connectCors.allowedMethods],
    allowedHeaders: [...connectCors.allowedHeaders, ...MACP_REQUEST_HEADERS],
    exposedHeaders: [...connectCors.exposedHeaders, ERROR_DETAILS_TRAILER],
    maxAge: options.maxAgeSeconds ?? 7200,
  });
  return (request, response, next) => middleware(request, response, next);
}
