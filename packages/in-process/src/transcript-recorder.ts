import { type DescMessage, type JsonValue, type MessageShape, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** What happened on a call (or to the simulated clock), in the order it happened. */
export type TranscriptEntry =
  | {
      /** A message the client sent, in the order the transport took it. */
      readonly kind: "request";
      readonly call: number;
      readonly agent: string;
      readonly method: string;
      readonly message: JsonValue;
    }
  | {
      /** A message the client received. */
      readonly kind: "response";
      readonly call: number;
      readonly agent: string;
      readonly method: string;
      readonly message: JsonValue;
    }
  | {
      /** A stream the client read to its end without an error. */
      readonly kind: "end";
      readonly call: number;
      readonly agent: string;
      readonly method: string;
    }
  | {
      /** The call failed with a status (including a cancel by the client). */
      readonly kind: "error";
      readonly call: number;
      readonly agent: string;
      readonly method: string;
      /** The status code's name, e.g. "InvalidArgument". */
      readonly code: string;
      readonly message: string;
    }
  | {
      /** The harness moved the simulated clock (and ran what fell due). */
      readonly kind: "advance";
      readonly from: number;
      readonly to: number;
    };

/**
 * Records every request and response of the clients it is installed on, in
 * order, as protobuf JSON. Two runs of the same script against a runtime on a
 * simulated clock produce the same {@link TranscriptRecorder.toText} byte for
 * byte; a difference pinpoints where behaviour diverged.
 *
 * Messages are serialized when they pass, so later mutation of a message
 * object does not rewrite history. Calls are numbered in the order they start.
 */
export class TranscriptRecorder {
  private readonly recorded: TranscriptEntry[] = [];
  private calls = 0;

  /** Every entry so far. */
  get entries(): readonly TranscriptEntry[] {
    return this.recorded;
  }

  /** The transcript as JSON Lines: one entry per line, in order. */
  toText(): string {
    return this.recorded.map((entry) => `${JSON.stringify(entry)}\n`).join("");
  }

  /** Appends an entry (the harness records clock moves this way). */
  record(entry: TranscriptEntry): void {
    this.recorded.push(entry);
  }

  /** A client interceptor that records calls as made by `agent`. */
  interceptor(agent: string): Interceptor {
    return (next) => async (request) => {
      const call = ++this.calls;
      const method = request.method.name;
      const input = request.method.input;
      const output = request.method.output;
      const common = { call, agent, method };
      const failed = (error: unknown): never => {
        const status = ConnectError.from(error);
        this.record({
          kind: "error",
          ...common,
          code: Code[status.code],
          message: status.rawMessage,
        });
        throw error;
      };

      if (!request.stream) {
        this.record({ kind: "request", ...common, message: toJson(input, request.message) });
        const response = await next(request).catch(failed);
        if (!response.stream) {
          this.record({ kind: "response", ...common, message: toJson(output, response.message) });
        }
        return response;
      }

      const record = this.record.bind(this);
      async function* requests<M extends DescMessage>(
        schema: M,
        source: AsyncIterable<MessageShape<M>>,
      ): AsyncGenerator<MessageShape<M>> {
        for await (const message of source) {
          record({ kind: "request", ...common, message: toJson(schema, message) });
          yield message;
        }
      }
      async function* responses<M extends DescMessage>(
        schema: M,
        source: AsyncIterable<MessageShape<M>>,
      ): AsyncGenerator<MessageShape<M>> {
        try {
          for await (const message of source) {
            record({ kind: "response", ...common, message: toJson(schema, message) });
            yield message;
          }
        } catch (error) {
          failed(error);
        }
        record({ kind: "end", ...common });
      }

      const response = await next({
        ...request,
        message: requests(input, request.message),
      }).catch(failed);
      if (!response.stream) return response;
      return { ...response, message: responses(output, response.message) };
    };
  }
}
