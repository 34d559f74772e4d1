// @macp/connect/node: a Node HTTP/2 server for the MACP routes (h2c beside
// HTTP/1.1 for development, TLS with HTTP/1.1 fallback for production),
// optional CORS, the runtime's timer driver, and SIGTERM/SIGINT handling.

export type { MacpCorsOptions } from "./cors-handler.js";
export { type TrailerWriter, useSpecGrpcMessageEncoding } from "./grpc-message-encoding.js";
export {
  installShutdownHandlers,
  type ShutdownHandlerOptions,
} from "./install-shutdown-handlers.js";
export {
  type MacpServer,
  type MacpServerCloseOptions,
  type MacpServerOptions,
  type MacpTlsOptions,
  type NodeRequestCall,
  startMacpServer,
} from "./start-macp-server.js";
export { startTimerDriver, type TimerDriver, type TimerDriverOptions } from "./timer-driver.js";
