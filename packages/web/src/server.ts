// `hurd web`'s HTTP side: one page, its bundle, a small JSON API and one
// Server-Sent Events stream per open page. node:http and nothing else.
//
// Access: bound to 127.0.0.1 unless told otherwise, and every request must
// prove it was given access, because the view shows what the session's
// token can see (every message of the hurd, as rpctrace does): either the
// session's token (`Authorization: Bearer <token>` or `?token=`), or the
// one-time key printed at start (`/?key=...`), which the first visit trades
// for a cookie (HttpOnly, SameSite=Strict) and which then stops working.
//
//   GET /                       the page
//   GET /app.js                 its bundle (page/main.ts, built with esbuild)
//   GET /api/state              every hurd's processes (WebState)
//   GET /api/ports?hurd=NAME    a hurd's port graph (WebPorts)
//   GET /api/space?node=H/PID   a process's IPC space (WebSpace)
//   GET /api/message/N          one message in full (WebMessageDetail)
//   GET /api/events             SSE: "state" when the processes change, "traffic" every tick
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Model, type Observed } from "./model.js";
import { PAGE } from "./page.js";

export interface WebOptions {
  /** host:port to listen on (port 0 picks one). Default 127.0.0.1:7410. */
  listen?: string;
  observed: Observed;
  /** A bearer token that is always accepted (the session's). */
  token?: string;
  /** How often the process tables are read, ms (default 1000). */
  refreshMs?: number;
  /** How often traffic is sent to pages, ms (default 250): the drawing's rate limit. */
  tickMs?: number;
  log?: (line: string) => void;
}

export interface WebServer {
  /** The page's address, with the one-time key. */
  readonly url: string;
  readonly port: number;
  readonly model: Model;
  close(): Promise<void>;
}

const BUNDLE = new URL("../dist/page/app.js", import.meta.url);
/** Pages connected at once at most (each an SSE stream). */
const MAX_CLIENTS = 32;

function eq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function splitAddr(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(":");
  const port = Number(a.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`not host:port: ${a}`);
  return { host: a.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

export async function startWeb(o: WebOptions): Promise<WebServer> {
  const log = o.log ?? (() => {});
  const model = new Model(o.observed);
  await model.refresh();
  let oneTimeKey: string | null = randomBytes(18).toString("base64url");
  const cookieSecret = randomBytes(24).toString("base64url");
  const clients = new Set<ServerResponse>();

  const allowed = (req: IncomingMessage, url: URL): boolean => {
    const auth = req.headers.authorization ?? "";
    if (o.token && auth.startsWith("Bearer ") && eq(auth.slice(7), o.token)) return true;
    const t = url.searchParams.get("token");
    if (o.token && t && eq(t, o.token)) return true;
    const c = /(?:^|;\s*)hurdweb=([^;]+)/.exec(req.headers.cookie ?? "");
    return !!c && eq(c[1]!, cookieSecret);
  };

  const json = (res: ServerResponse, code: number, body: unknown) => {
    res.writeHead(code, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  };

  const send = (res: ServerResponse, event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method !== "GET") return json(res, 405, { error: "GET only" });
    // The one-time key: traded once for the cookie, then gone.
    const key = url.searchParams.get("key");
    if (url.pathname === "/" && key !== null) {
      if (oneTimeKey === null || !eq(key, oneTimeKey)) return json(res, 403, { error: "this key was used already or is wrong: run `hurd web` again for a new one" });
      oneTimeKey = null;
      res.writeHead(303, { location: "/", "set-cookie": `hurdweb=${cookieSecret}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    // The session's token in the address works as a key that stays valid
    // (a browser's later requests carry the cookie, not the token).
    const token = url.searchParams.get("token");
    if (url.pathname === "/" && token !== null && o.token && eq(token, o.token)) {
      res.writeHead(303, { location: "/", "set-cookie": `hurdweb=${cookieSecret}; HttpOnly; SameSite=Strict; Path=/` });
      res.end();
      return;
    }
    if (!allowed(req, url)) return json(res, 401, { error: "hurd web needs its one-time key (the URL `hurd web` printed) or the session's token" });
    switch (url.pathname) {
      case "/":
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        res.end(PAGE);
        return;
      case "/app.js":
        try {
          res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" });
          res.end(await readFile(BUNDLE));
        } catch {
          json(res, 500, { error: "the page's bundle is missing: npm run build" });
        }
        return;
      case "/api/state":
        return json(res, 200, model.state);
      case "/api/ports":
        return json(res, 200, await model.ports(url.searchParams.get("hurd") ?? model.state.hurds[0]?.name ?? ""));
      case "/api/space": {
        const s = await model.space(url.searchParams.get("node") ?? "");
        return s ? json(res, 200, s) : json(res, 404, { error: "no such process, or it has no task" });
      }
      case "/api/events":
        if (clients.size >= MAX_CLIENTS) return json(res, 503, { error: `at most ${MAX_CLIENTS} pages at once` });
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
        clients.add(res);
        send(res, "state", model.state);
        req.on("close", () => clients.delete(res));
        return;
    }
    const m = /^\/api\/message\/(\d+)$/.exec(url.pathname);
    if (m) {
      const d = model.message(Number(m[1]));
      return d ? json(res, 200, d) : json(res, 404, { error: "that message has left the view's memory" });
    }
    json(res, 404, { error: "no such page" });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      log(`${req.url}: ${e.message}`);
      if (!res.headersSent) json(res, 500, { error: e.message });
      else res.end();
    });
  });
  const { host, port } = splitAddr(o.listen ?? "127.0.0.1:7410");
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;

  // The process tables, read once a period; the pages hear only of changes.
  let refreshing = false;
  const refresh = setInterval(() => {
    if (refreshing) return;
    refreshing = true;
    model
      .refresh()
      .then((changed) => {
        if (changed) for (const c of clients) send(c, "state", model.state);
      })
      .catch((e: Error) => log(`refresh: ${e.message}`))
      .finally(() => (refreshing = false));
  }, o.refreshMs ?? 1000);
  // Traffic, batched: a page draws at most this often whatever the message rate.
  const tick = setInterval(() => {
    const t = model.takeTraffic();
    if (t) for (const c of clients) send(c, "traffic", t);
  }, o.tickMs ?? 250);
  // The kernel's trace stream: only while the view runs.
  let stopWatch: (() => void) | null = null;
  const watch = () => {
    stopWatch = o.observed.watch(
      (b) => model.ingest(b),
      (e) => {
        if (e) log(`trace stream: ${e.message}`);
      },
    );
  };
  watch();

  const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost}:${bound}/?key=${oneTimeKey}`,
    port: bound,
    model,
    async close() {
      clearInterval(refresh);
      clearInterval(tick);
      stopWatch?.();
      for (const c of clients) c.end();
      clients.clear();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections?.();
    },
  };
}
