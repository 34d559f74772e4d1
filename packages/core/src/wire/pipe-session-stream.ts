import type { MessageInitShape } from "@bufbuild/protobuf";
import type { StreamSessionRequest, StreamSessionResponseSchema } from "@macp/proto";
import type { SessionStream, SessionStreamOutput } from "../runtime-api.js";
import { toWireError } from "./wire-rules.js";

/** One StreamSession response, as protobuf-es init data. */
export type StreamSessionResponseInit = MessageInitShape<typeof StreamSessionResponseSchema>;

function toResponse(output: SessionStreamOutput): StreamSessionResponseInit {
  if (output.kind === "envelope") {
    return { response: { case: "envelope", value: output.envelope } };
  }
  return {
    response: {
      case: "error",
      value: toWireError(output.error, output.sessionId, output.messageId),
    },
  };
}

/**
 * Runs one StreamSession call: feeds client frames to the runtime's stream in
 * order while yielding its outputs. The two halves run concurrently because a
 * client may send many frames before reading, or read for hours without
 * sending. Whichever half fails ends both: a reader error aborts `abort` (the
 * signal the runtime stream was opened with) and fails the writer; the writer
 * ending for any reason aborts `abort`, which stops the reader. A terminating
 * runtime error is thrown as the MacpStreamError it is (the transport maps it
 * with `streamTerminationOf`); a failure of `requests` is thrown unchanged.
 */
export async function* pipeSessionStream(
  stream: SessionStream,
  requests: AsyncIterable<StreamSessionRequest>,
  abort: AbortController,
): AsyncGenerator<StreamSessionResponseInit, void, undefined> {
  let failReader: (error: unknown) => void = () => {};
  const readerFailed = new Promise<never>((_, reject) => {
    failReader = reject;
  });
  // Observed through Promise.race below; this keeps a late failure from being reported as unhandled.
  readerFailed.catch(() => {});

  const read = async (): Promise<void> => {
    try {
      for await (const frame of requests) {
        if (abort.signal.aborted) return;
        await stream.push(frame);
      }
      // Half-close: the runtime flushes what is buffered, then ends `outputs` (STR-6).
      if (!abort.signal.aborted) stream.end();
    } catch (error) {
      failReader(error);
      abort.abort(error);
    }
  };
  void read();

  const outputs = stream.outputs[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = outputs.next();
      // If the reader wins the race this promise is abandoned; it must not surface as unhandled.
      next.catch(() => {});
      const result = await Promise.race([next, readerFailed]);
      if (result.done === true) return;
      yield toResponse(result.value);
    }
  } finally {
    abort.abort();
    // Not awaited: an iterator with a pending next() queues return() behind it,
    // and the abort above is what actually ends the runtime stream.
    outputs.return?.().catch(() => {});
  }
}
