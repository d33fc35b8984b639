#!/usr/bin/env node
// The build: every workspace's TypeScript to JavaScript with source maps.
//
//   node scripts/build.mjs              build every workspace (npm ci's prepare runs it after `buf generate`)
//   node scripts/build.mjs --if-stale   only if a source is newer than the last build (npm start, npm run hurd)
//
// A workspace (the root package.json's "workspaces") is built from its
// `src/` and, for packages/proto, `gen/` (ts-proto's output) into `dist/`,
// file for file: `src/a/b.ts` becomes `dist/a/b.js` and `dist/a/b.js.map`,
// so `new URL("../../../proto", import.meta.url)` and the like mean the same
// in both trees. `.mjs` files (loaded before any TypeScript could be, e.g.
// telemetry's register.mjs) are copied; `*.test.ts` stay behind. A new
// package joins by being a workspace with a `src/`; its package.json points
// its exports at dist/ (see packages/mach/package.json).
//
// esbuild transpiles file by file (no bundling, no type-check: `npm run
// typecheck` does that), the same transform tsx applies when the tests run
// the sources, so compiled and tested code agree. Measured against tsc emit
// in README's "Compiled JavaScript".
//
// A workspace may also declare browser bundles in its package.json
// (`"hurdmesh": { "bundles": [{ "entry": "page/main.ts", "out": "dist/page/app.js" }] }`,
// packages/web): each entry is bundled with its imports (cytoscape.js for
// `hurd web`'s page) into one minified file, built with the workspace and
// stale when a file beside its entry changes.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const SOURCE_DIRS = ["src", "gen"];
const STAMP = ".build-stamp";

/** Every workspace folder, from the root package.json's "workspaces" ("dir/*" or "dir"). */
function workspaces() {
  const globs = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).workspaces ?? [];
  const dirs = globs.flatMap((g) => (g.endsWith("/*") ? readdirSync(join(root, g.slice(0, -2))).map((e) => join(g.slice(0, -2), e)) : [g]));
  return dirs.filter((d) => existsSync(join(root, d, "package.json"))).sort();
}

/** Files under dir, relative to it (node_modules and dot-folders left out). */
function walk(dir, sub = "", out = []) {
  for (const e of readdirSync(join(dir, sub), { withFileTypes: true })) {
    const rel = sub ? join(sub, e.name) : e.name;
    if (e.isDirectory()) {
      if (e.name !== "node_modules" && !e.name.startsWith(".")) walk(dir, rel, out);
    } else out.push(rel);
  }
  return out;
}

/** What one workspace builds: { dir, out, ts: [source paths], mjs: [...] } per source folder. */
function units(ws) {
  return SOURCE_DIRS.filter((s) => existsSync(join(root, ws, s))).map((s) => {
    const dir = join(root, ws, s);
    const files = walk(dir).sort();
    return {
      dir,
      out: join(root, ws, "dist"),
      ts: files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !f.endsWith(".test.ts")),
      mjs: files.filter((f) => f.endsWith(".mjs")),
    };
  });
}

/** The browser bundles a workspace declares ({ entry, out, dir: the entry's folder }). */
function bundles(ws) {
  const b = JSON.parse(readFileSync(join(root, ws, "package.json"), "utf8")).hurdmesh?.bundles ?? [];
  return b.map((x) => ({ ...x, dir: dirname(join(root, ws, x.entry)) }));
}

/** Newest mtime of a workspace's sources and manifest (ms). */
function newestSource(ws, us) {
  let t = statSync(join(root, ws, "package.json")).mtimeMs;
  for (const u of us) for (const f of [...u.ts, ...u.mjs]) t = Math.max(t, statSync(join(u.dir, f)).mtimeMs);
  for (const b of bundles(ws)) for (const f of walk(b.dir)) t = Math.max(t, statSync(join(b.dir, f)).mtimeMs);
  return t;
}

function stale(ws, us) {
  const stamp = join(root, ws, "dist", STAMP);
  return !existsSync(stamp) || statSync(stamp).mtimeMs < newestSource(ws, us);
}

const ifStale = process.argv.includes("--if-stale");
const t0 = performance.now();
let built = 0;
for (const ws of workspaces()) {
  const us = units(ws);
  if (us.length === 0 || (ifStale && !stale(ws, us))) continue;
  // From scratch: a module renamed or removed must not linger in dist/.
  rmSync(join(root, ws, "dist"), { recursive: true, force: true });
  for (const u of us) {
    await build({
      absWorkingDir: root,
      entryPoints: u.ts.map((f) => join(u.dir, f)),
      outbase: u.dir,
      outdir: u.out,
      format: "esm",
      platform: "node",
      target: "node22",
      sourcemap: "linked",
      // Stack traces name the .ts file and line; the text is on disk beside it.
      sourcesContent: false,
      tsconfig: join(root, "tsconfig.base.json"),
      logLevel: "warning",
    });
    for (const f of u.mjs) {
      mkdirSync(dirname(join(u.out, f)), { recursive: true });
      copyFileSync(join(u.dir, f), join(u.out, f));
    }
    built += u.ts.length + u.mjs.length;
  }
  for (const b of bundles(ws)) {
    await build({
      absWorkingDir: root,
      entryPoints: [join(root, ws, b.entry)],
      outfile: join(root, ws, b.out),
      bundle: true,
      minify: true,
      format: "esm",
      platform: b.platform ?? "browser",
      target: "es2022",
      sourcemap: "linked",
      sourcesContent: false,
      logLevel: "warning",
    });
    built++;
  }
  writeFileSync(join(root, ws, "dist", STAMP), "");
}
if (built || !ifStale) console.error(`build: ${built} files in ${Math.round(performance.now() - t0)} ms (${relative(process.cwd(), root) || "."})`);
