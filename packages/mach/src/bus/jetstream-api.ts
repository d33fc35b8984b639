/**
 * JetStream's JSON API as the three stores on it use it (the KV bucket, the
 * kernel's log, proc's store log): a request answered with JSON, its error
 * shape and codes, and one HurdError (EIO) per failure. nats.js's own
 * JetStream client is not used: these stores need only a handful of calls,
 * with the expected-last-sequence headers they fence by.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Errno, HurdError } from "../errors.js";

/** What every JetStream API answer may carry. */
export interface ApiError {
  error?: { code: number; err_code?: number; description?: string };
}

/** JetStream's error for a stream that exists with another configuration. */
export const STREAM_NAME_IN_USE = 10058;
/** JetStream's error for a write whose Nats-Expected-Last-(Subject-)Sequence no longer holds. */
export const WRONG_LAST_SEQUENCE = 10071;
/** JetStream's error for a message that is not there. */
export const NO_MESSAGE = 10037;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A JetStream API call; a transport failure (no JetStream, a timeout) is EIO naming the subject. */
export async function jsRequest(nc: NatsConnection, subject: string, body: unknown, timeoutMs: number): Promise<ApiError & Record<string, unknown>> {
  let m;
  try {
    m = await nc.request(subject, encoder.encode(JSON.stringify(body)), { timeout: timeoutMs });
  } catch (e) {
    throw new HurdError(Errno.EIO, `JetStream (${subject}): ${(e as Error).message}; is nats-server running with -js?`, { cause: e });
  }
  return jsDecode(m.data);
}

/** A JetStream answer (an API reply or a publish's ack). */
export function jsDecode<T = ApiError & Record<string, unknown>>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}

/** The EIO for an answer carrying an error: `what` of `store` went wrong, in JetStream's words. */
export function jsFail(store: string, what: string, r: ApiError): HurdError {
  return new HurdError(Errno.EIO, `${store}: ${what}: ${r.error?.description ?? "error"} (${r.error?.err_code ?? r.error?.code})`);
}

/**
 * Makes a stream that keeps every message until told to drop them (the
 * kernel's log and its snapshots): file storage, no limits, no deletes of
 * single messages, purges allowed. One that exists already is kept as it is.
 */
export async function makeKeptStream(nc: NatsConnection, create: string, name: string, subjects: string[], replicas: number, timeoutMs: number, store: string): Promise<void> {
  const r = await jsRequest(nc, create, {
    name,
    subjects,
    retention: "limits",
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    discard: "old",
    storage: "file",
    num_replicas: replicas,
    deny_delete: true,
    deny_purge: false,
  }, timeoutMs);
  if (r.error && r.error.err_code !== STREAM_NAME_IN_USE) throw jsFail(store, "cannot make the stream", r);
}
