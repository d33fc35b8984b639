// The resource every span and metric of a program carries: service.name
// (OTEL_SERVICE_NAME wins), service.namespace "hurdmesh",
// service.instance.id (one per process, so two processes of one service,
// a root hurd's proc and a subhurd's, are told apart), hurd.name when the
// program serves one hurd, and whatever OTEL_RESOURCE_ATTRIBUTES adds
// (which wins over all but service.name, as the specification has it).
import { randomUUID } from "node:crypto";
import type { Attributes } from "@opentelemetry/api";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";

/** This process's service.instance.id, the same for its spans and its metrics. */
export const INSTANCE_ID = randomUUID();

/**
 * OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs, values
 * percent-encoded (W3C Baggage's octets); a malformed pair is skipped.
 */
export function parseResourceAttributes(s: string | undefined): Attributes {
  const out: Attributes = {};
  if (!s) return out;
  for (const pair of s.split(",")) {
    const i = pair.indexOf("=");
    if (i <= 0) continue;
    const k = pair.slice(0, i).trim();
    try {
      const v = decodeURIComponent(pair.slice(i + 1).trim());
      if (k) out[k] = v;
    } catch {
      // Not valid percent-encoding: the pair is dropped, the rest kept.
    }
  }
  return out;
}

/** The hurd a program serves, when the environment says (containers: HURD_SUBHURD, else HURD_SYSTEM). */
export function hurdOfEnv(env: NodeJS.ProcessEnv): string {
  return env.HURD_NAME || env.HURD_SUBHURD || env.HURD_SYSTEM || "";
}

export function resourceAttributes(service: string, env: NodeJS.ProcessEnv, hurd?: string): Attributes {
  const a: Attributes = { "service.namespace": "hurdmesh", "service.instance.id": INSTANCE_ID };
  const h = hurd ?? hurdOfEnv(env);
  if (h) a["hurd.name"] = h;
  Object.assign(a, parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES));
  a["service.name"] = env.OTEL_SERVICE_NAME || (typeof a["service.name"] === "string" && a["service.name"]) || service;
  return a;
}

export function programResource(service: string, env: NodeJS.ProcessEnv, hurd?: string): Resource {
  return resourceFromAttributes(resourceAttributes(service, env, hurd));
}
