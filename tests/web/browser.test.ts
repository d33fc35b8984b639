// `hurd web` as a person sees it: a headless Chromium (Debian's, which
// .ci/run installs; never skipped) driven by playwright-core opens the page
// `hurd up --web` prints, beside an embedded hurd with a subhurd, and
// watches processes come and go, proc's receive rights, and a fork loop's
// messages counted on the edge they travel, down to one decoded body.
// Screenshots go to test-output/web/ (HURD_TEST_OUT to put them elsewhere).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { Rights } from "@hurdmesh/mach";
import { until } from "../harness.js";

const root = new URL("../../", import.meta.url).pathname;
const main = join(root, "packages/cli/src/main.ts");
const CHROMIUM = process.env.HURD_CHROMIUM ?? "/usr/bin/chromium";
const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
const out = join(process.env.HURD_TEST_OUT ?? join(root, "test-output"), "web");
const HURD = "webt";

describe("hurd web in a browser", () => {
  const state = mkdtempSync(join(tmpdir(), "hurd-web-"));
  const env = { ...process.env, HURD_STATE_DIR: state };
  let up: ChildProcess;
  let log = "";
  let ctx: BrowserContext;
  let page: Page;
  const bg: ChildProcess[] = [];
  const hurd = (...args: string[]) => {
    const words = args[0] === "subhurd" ? 2 : 1;
    const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args.slice(0, words), "--hurd", HURD, ...args.slice(words)], { env, encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, `hurd ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  /** Node ids the page's graph holds now. */
  const nodes = () => page.evaluate(() => (globalThis as any).hurdweb.cy.nodes().map((n: any) => n.id()) as string[]);

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
    mkdirSync(out, { recursive: true });
    up = spawn(process.execPath, ["--import", "tsx", main, "up", "--grpc", "127.0.0.1:0", "--hurd", HURD, "--web", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "pipe"] });
    up.stdout!.on("data", (d) => (log += d));
    up.stderr!.on("data", (d) => (log += d));
    await until(() => /hurd web: http:\/\/\S+/.test(log) || up.exitCode !== null, 60000, "hurd up --web");
    assert.match(log, /hurd web: http:\/\/127\.0\.0\.1:\d+\/\?key=/, log);
    // hurd up logs one JSON object a line off a terminal (pino): the address ends at the string's quote.
    hurd("subhurd", "create", "sub1");
    ctx = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "hurd-web-chromium-")), { executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1400, height: 850 } });
    page = await ctx.newPage();
    await page.goto(/hurd web: (http:\/\/[^\s"]+)/.exec(log)![1]!);
  });

  after(async () => {
    await ctx?.close();
    for (const p of bg) p.kill("SIGKILL");
    if (up && up.exitCode === null) {
      up.kill("SIGINT");
      await new Promise((r) => up.once("exit", r));
    }
    rmSync(state, { recursive: true, force: true });
  });

  it("the one-time key works once", async () => {
    const url = /hurd web: (http:\/\/[^\s"]+)/.exec(log)![1]!;
    const again = await fetch(url, { redirect: "manual" });
    assert.equal(again.status, 403);
    assert.equal((await fetch(url.replace(/\/\?key=.*/, "/api/state"))).status, 401);
  });

  it("shows pids 1–4 of the hurd and of its subhurd, nested in it", async () => {
    await page.waitForFunction(() => (globalThis as any).hurdweb.cy.getElementById("sub1/4").nonempty(), null, { timeout: 30000 });
    const ids = await nodes();
    for (const h of [HURD, "sub1"]) for (const pid of [1, 2, 3, 4]) assert.ok(ids.includes(`${h}/${pid}`), `${h}/${pid} in ${ids.join(" ")}`);
    const parents = await page.evaluate(() => {
      const cy = (globalThis as any).hurdweb.cy;
      return { proc: cy.getElementById("sub1/4").data("parent"), sub: cy.getElementById("hurd:sub1").data("parent") };
    });
    assert.deepEqual(parents, { proc: "hurd:sub1", sub: `hurd:${HURD}` });
    await page.screenshot({ path: join(out, "processes.png") });
  });

  it("a spawned program appears, and goes when it is killed", async () => {
    const s = spawn(process.execPath, ["--import", "tsx", main, "spawn", "--hurd", HURD, "--", "sleep", "60"], { env, stdio: ["ignore", "pipe", "pipe"] });
    bg.push(s);
    let err = "";
    s.stderr!.on("data", (d) => (err += d));
    await until(() => /is pid \d+/.test(err), 30000, "hurd spawn");
    const pid = Number(/is pid (\d+)/.exec(err)![1]);
    await page.waitForFunction((id) => (globalThis as any).hurdweb.cy.getElementById(id).nonempty(), `${HURD}/${pid}`, { timeout: 15000 });
    // Read between hurd spawn's fork and its proc_setprocargs, the process shows as "?" until the next read (once a second).
    await page
      .waitForFunction((id) => /sleep 60/.test(String((globalThis as any).hurdweb.cy.getElementById(id).data("label"))), `${HURD}/${pid}`, { timeout: 5000 })
      .catch(() => {});
    assert.match(await page.evaluate((id) => (globalThis as any).hurdweb.cy.getElementById(id).data("label") as string, `${HURD}/${pid}`), /sleep 60/);
    hurd("kill", String(pid));
    await page.waitForFunction((id) => (globalThis as any).hurdweb.cy.getElementById(id).empty(), `${HURD}/${pid}`, { timeout: 15000 });
  });

  it("selecting proc in the port graph lists its receive rights", async () => {
    await page.click("#tab-ports");
    await page.waitForFunction((id) => (globalThis as any).hurdweb.cy.getElementById(id).nonempty(), `${HURD}/4`, { timeout: 15000 });
    await page.evaluate((id) => (globalThis as any).hurdweb.select(id), `${HURD}/4`);
    await page.waitForSelector("#space-table tr.receive", { timeout: 15000 });
    const receive = await page.locator("#space-table tr.receive").count();
    assert.ok(receive >= 1, `proc holds receive rights: ${receive}`);
    // Its receive rights are edges of the graph too, to ports whose receiver it is.
    const edges = await page.evaluate((id) => (globalThis as any).hurdweb.cy.edges(".receive").filter((e: any) => e.source().id() === id).length as number, `${HURD}/4`);
    assert.ok(edges >= 1);
    await page.screenshot({ path: join(out, "ports.png") });
    await page.click("#tab-procs");
  });

  it("a fork loop's messages are counted on its edge to proc, and one opens decoded", async () => {
    // The loop runs here, as a process of the hurd (a child of pid 1) the page knows.
    const prev = process.env.HURD_STATE_DIR;
    process.env.HURD_STATE_DIR = state;
    const { connect } = await import("../../packages/cli/src/session.js");
    const c = await connect(HURD, "forkloop");
    process.env.HURD_STATE_DIR = prev;
    try {
      const me = `${HURD}/${c.me.pid}`;
      await page.waitForFunction((id) => (globalThis as any).hurdweb.cy.getElementById(id).nonempty(), me, { timeout: 15000 });
      const N = 20;
      for (let i = 0; i < N; i++) {
        const k = await c.me.task.taskCreate("fork");
        const x = new Rights();
        await c.me.proc.child({ child: x.copySend(k.task) }, { rights: x });
        await c.me.task.taskTerminate(k.task);
        await c.me.wait(-1);
      }
      const edge = `msg:${me}>${HURD}/4`;
      await page.waitForFunction(
        ({ edge, n }) => {
          const e = (globalThis as any).hurdweb.cy.getElementById(edge);
          // Spans arrive in batches, so the last turn's Wait may come after its Child: wait for both.
          // (No named helper here: the page would not know the compiler's __name.)
          let child = 0, wait = 0;
          for (const [k, v] of Object.entries((e.nonempty() && e.data("rpcs")) || {})) {
            if (/Child$/.test(k)) child += v as number;
            else if (/Wait/.test(k)) wait += v as number;
          }
          return child >= n && wait >= n;
        },
        { edge, n: N },
        { timeout: 20000 },
      );
      const label = Number(await page.evaluate((id) => (globalThis as any).hurdweb.cy.getElementById(id).data("label"), edge));
      assert.ok(label >= 2 * N, `${label} messages on ${edge}: each turn a Child and a Wait at least`);
      // A request with a body (proc_waitid's pid -1; an empty message encodes to no bytes).
      await page.fill("#f-rpc", "wait");
      const n = await page.evaluate(() => (globalThis as any).hurdweb.messages.filter((m: any) => /Waitid$/.test(m.rpc) && !m.reply).at(-1)?.n as number | undefined);
      const seen = await page.evaluate(() => [...new Set((globalThis as any).hurdweb.messages.map((m: any) => `${m.rpc}${m.reply ? " (reply)" : ""}`))].join(", "));
      assert.ok(n !== undefined, `a Waitid request in the page's list: ${seen}`);
      const item = page.locator(`#messages li[data-n="${n}"]`);
      await item.waitFor({ timeout: 10000 });
      await item.click();
      await page.waitForFunction(() => /wait/i.test((globalThis as any).document.getElementById("msg-line")?.textContent ?? ""), null, { timeout: 10000 });
      const body = (await page.locator("#msg-body").textContent()) ?? "";
      assert.match(body, /pid: -1/);
      await page.screenshot({ path: join(out, "messages.png") });
    } finally {
      await c.close();
    }
  });
});
