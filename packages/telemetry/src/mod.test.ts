// The API's promise, as OpenTelemetry's own API package makes it: a server
// that imports @hurdmesh/telemetry to be traced loads no SDK. Checked in a
// fresh process with a resolve hook that records every module resolved.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

// Runs in the hooks thread: reports each resolved URL to the main thread.
const HOOK = `let port;
export function initialize(d) { port = d.port; }
export async function resolve(s, c, next) { const r = await next(s, c); port.postMessage(r.url); return r; }`;

/** What a fresh `node --import tsx` resolves, and what it loads through require, while importing `what`. */
function loaded(what: string): { ms: number; urls: string[] } {
  const script = `
import { register, createRequire } from "node:module";
import { MessageChannel } from "node:worker_threads";
const { port1, port2 } = new MessageChannel();
const urls = [];
port1.on("message", (u) => urls.push(u));
register("data:text/javascript," + encodeURIComponent(${JSON.stringify(HOOK)}), { data: { port: port2 }, transferList: [port2] });
const t0 = performance.now();
await import(${JSON.stringify(what)});
const ms = performance.now() - t0;
// Each URL was posted before its resolve returned; let the last ones arrive.
await new Promise((r) => setTimeout(r, 200));
port1.close();
urls.push(...Object.keys(createRequire(import.meta.url).cache));
console.log(JSON.stringify({ ms, urls }));`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: here, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { ms: number; urls: string[] };
}

const SDK = /@opentelemetry\/(?!api\/)|telemetry-sdk/;

describe("@hurdmesh/telemetry, the API", () => {
  it("loads @opentelemetry/api and the runtime, and nothing of the OpenTelemetry SDK or @hurdmesh/telemetry-sdk", (t) => {
    const api = loaded("@hurdmesh/telemetry");
    t.diagnostic(`import took ${api.ms.toFixed(0)} ms, ${api.urls.length} modules`);
    assert.ok(
      api.urls.some((u) => u.includes("packages/telemetry/src/hooks.ts")),
      "the hook saw the API's own modules",
    );
    assert.deepEqual(
      api.urls.filter((u) => SDK.test(u)),
      [],
    );
  });

  it("while the SDK, for comparison, loads sdk-trace (the check sees it)", (t) => {
    const sdk = loaded("@hurdmesh/telemetry-sdk");
    t.diagnostic(`import took ${sdk.ms.toFixed(0)} ms, ${sdk.urls.length} modules`);
    assert.ok(sdk.urls.some((u) => u.includes("@opentelemetry/sdk-trace/")));
  });
});
