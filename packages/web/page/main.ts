// `hurd web`'s page: the process tree of every hurd (subhurds nested in
// their parent's box), messages drawn along the edges between processes as
// counts, the port graph of a hurd, a process's IPC space and a message's
// details. cytoscape.js draws and lays out the graphs (its cose layout for
// graphs of a few hundred nodes, a grid beyond: cose's cost grows with the
// square of the nodes). The server sends traffic in batches; the page
// redraws at most every REDRAW_MS, so a flood of messages costs the browser
// a bounded amount of work.
import cytoscape, { type Core, type ElementDefinition, type EventObject } from "cytoscape";
import type { WebMessage, WebMessageDetail, WebPorts, WebSpace, WebState, WebTraffic } from "../src/types.js";

const REDRAW_MS = 500;
/** Messages listed in the side panel (the newest). */
const LISTED = 200;
/** Above this many elements, a grid instead of cose. */
const COSE_MAX = 400;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

const cy: Core = cytoscape({
  container: $("cy"),
  style: [
    { selector: "node", style: { "background-color": "#4fa3ff", label: "data(label)", color: "#d8dee6", "font-size": 10, "text-valign": "bottom", "text-margin-y": 3, width: 18, height: 18 } },
    { selector: "node.hurd", style: { "background-color": "#1b232c", "background-opacity": 0.6, "border-color": "#3a4a5c", "border-width": 1, shape: "round-rectangle", "text-valign": "top", "font-size": 12, color: "#8b96a3", padding: "14px" } },
    { selector: "node.zombie", style: { "background-color": "#ff6b6b" } },
    { selector: "node.stopped", style: { "background-color": "#c9a227" } },
    { selector: "node.group", style: { shape: "round-rectangle", "background-color": "#3a4a5c", width: 34, height: 18 } },
    { selector: "node.task", style: { "background-color": "#4fa3ff" } },
    { selector: "node.port", style: { shape: "diamond", "background-color": "#7bd88f", width: 12, height: 12, "font-size": 8 } },
    { selector: "node.dead", style: { shape: "star", "background-color": "#ff6b6b" } },
    { selector: "node:selected", style: { "border-color": "#ffb347", "border-width": 3 } },
    { selector: "edge", style: { width: 1, "line-color": "#3a4a5c", "curve-style": "bezier" } },
    { selector: "edge.msg", style: { width: "data(w)", "line-color": "#4fa3ff", "target-arrow-shape": "triangle", "target-arrow-color": "#4fa3ff", label: "data(label)", "font-size": 9, color: "#d8dee6", "text-background-color": "#0f1419", "text-background-opacity": 0.8, "text-background-padding": "1px" } },
    { selector: "edge.hot", style: { "line-color": "#ffb347", "target-arrow-color": "#ffb347" } },
    { selector: "edge.receive", style: { "line-color": "#7bd88f", width: 2 } },
    { selector: "edge.send", style: { "line-color": "#4fa3ff", "target-arrow-shape": "triangle", "target-arrow-color": "#4fa3ff", label: "data(label)", "font-size": 8, color: "#8b96a3" } },
    { selector: "edge.send-once", style: { "line-color": "#c99bff", "line-style": "dashed", "target-arrow-shape": "triangle", "target-arrow-color": "#c99bff" } },
    { selector: "edge.dead-name", style: { "line-color": "#ff6b6b", "line-style": "dotted" } },
  ],
});

type View = "procs" | "ports";
let view: View = "procs";
let state: WebState = { hurds: [], at: 0 };
/** Messages per edge since the page opened: `from>to` -> rpc -> count. */
const traffic = new Map<string, { from: string; to: string; rpcs: Map<string, number> }>();
const hot = new Set<string>();
const messages: WebMessage[] = [];
let dirty = false;
let structure = "";

const filter = () => ({ hurd: $<HTMLSelectElement>("f-hurd").value, pid: $<HTMLInputElement>("f-pid").value.trim(), rpc: $<HTMLInputElement>("f-rpc").value.trim().toLowerCase() });
function nodeMatches(id: string, f: ReturnType<typeof filter>): boolean {
  const [h, pid] = id.split("/");
  return (!f.hurd || h === f.hurd) && (!f.pid || pid === f.pid);
}
const rpcMatches = (rpc: string, f: ReturnType<typeof filter>) => !f.rpc || rpc.toLowerCase().includes(f.rpc);

// ------------------------------------------------------------------ processes

function processElements(): ElementDefinition[] {
  const els: ElementDefinition[] = [];
  for (const h of state.hurds) {
    els.push({ group: "nodes", data: { id: `hurd:${h.name}`, label: `hurd ${h.name} · ${h.total} processes`, parent: h.parent ? `hurd:${h.parent}` : undefined }, classes: "hurd" });
    const shown = new Set(h.procs.map((p) => p.id));
    for (const p of h.procs) {
      const cls = p.stat.startsWith("Z") ? "proc zombie" : p.stat.startsWith("T") ? "proc stopped" : "proc";
      els.push({ group: "nodes", data: { id: p.id, label: `${p.pid} ${p.command.length > 28 ? p.command.slice(0, 27) + "…" : p.command}`, parent: `hurd:${h.name}`, proc: p }, classes: cls });
      const parent = `${h.name}/${p.ppid}`;
      if (p.ppid !== p.pid && shown.has(parent)) els.push({ group: "edges", data: { id: `tree:${p.id}`, source: parent, target: p.id }, classes: "tree" });
    }
    for (const g of h.groups) {
      els.push({ group: "nodes", data: { id: g.id, label: `+${g.count} (pids ${g.minPid}–${g.maxPid})`, parent: `hurd:${h.name}`, group: g }, classes: "group" });
      if (g.parent && shown.has(g.parent)) els.push({ group: "edges", data: { id: `tree:${g.id}`, source: g.parent, target: g.id }, classes: "tree" });
    }
  }
  return els;
}

function layout(): void {
  const n = cy.elements().length;
  const opts = n <= COSE_MAX ? { name: "cose", animate: false, randomize: false, nodeDimensionsIncludeLabels: true, padding: 20, componentSpacing: 60, nodeRepulsion: () => 9000 } : { name: "grid", avoidOverlap: true, padding: 10, condense: true };
  cy.layout(opts as cytoscape.LayoutOptions).run();
}

function drawProcesses(): void {
  const els = processElements();
  const shape = els.map((e) => e.data.id + "|" + (e.data.label ?? "") + "|" + (e.classes ?? "")).join(",");
  if (shape === structure) return;
  const fresh = cy.elements().length === 0 || structure === "" || !sameNodes(els);
  structure = shape;
  cy.batch(() => {
    const keep = new Set(els.map((e) => e.data.id));
    cy.elements().forEach((e) => {
      if (!e.hasClass("msg") && !keep.has(e.id())) e.remove();
    });
    for (const e of els) {
      const have = cy.getElementById(e.data.id!);
      if (have.nonempty()) {
        have.data(e.data);
        have.classes(e.classes as string);
      } else cy.add(e);
    }
  });
  if (fresh) layout();
  dirty = true;
}

function sameNodes(els: ElementDefinition[]): boolean {
  const ids = new Set(cy.nodes().map((n) => n.id()));
  const want = els.filter((e) => e.group === "nodes");
  return want.length === ids.size && want.every((e) => ids.has(e.data.id!));
}

/** Traffic edges between processes, as the filters allow; at most once per REDRAW_MS. */
function drawTraffic(): void {
  if (view !== "procs") return;
  const f = filter();
  cy.batch(() => {
    const keep = new Set<string>();
    for (const [k, e] of traffic) {
      if (cy.getElementById(e.from).empty() || cy.getElementById(e.to).empty()) continue;
      if (!nodeMatches(e.from, f) && !nodeMatches(e.to, f)) continue;
      let n = 0;
      for (const [rpc, c] of e.rpcs) if (rpcMatches(rpc, f)) n += c;
      if (n === 0) continue;
      const id = `msg:${k}`;
      keep.add(id);
      const data = { id, source: e.from, target: e.to, count: n, label: String(n), w: Math.min(6, 1 + Math.log10(n)), rpcs: Object.fromEntries(e.rpcs) };
      const have = cy.getElementById(id);
      if (have.nonempty()) have.data(data);
      else cy.add({ group: "edges", data, classes: "msg" });
      cy.getElementById(id).toggleClass("hot", hot.has(k));
    }
    cy.edges(".msg").forEach((e) => {
      if (!keep.has(e.id())) e.remove();
    });
  });
  hot.clear();
}

// ------------------------------------------------------------------ ports

async function drawPorts(): Promise<void> {
  const hurd = filter().hurd || state.hurds[0]?.name || "";
  const g = (await (await fetch(`/api/ports?hurd=${encodeURIComponent(hurd)}`)).json()) as WebPorts;
  structure = "";
  const els: ElementDefinition[] = [];
  for (const t of g.tasks) els.push({ group: "nodes", data: { id: t.id, label: t.label, taskId: t.taskId }, classes: "task" });
  for (const p of g.ports) els.push({ group: "nodes", data: { id: p.id, label: p.msgcount ? `${p.label} [${p.msgcount} queued]` : p.label, port: p }, classes: p.dead ? "port dead" : "port" });
  for (const r of g.rights) els.push({ group: "edges", data: { id: r.id, source: r.task, target: r.port, label: r.kind === "send" ? `send ×${r.urefs}` : r.kind, right: r }, classes: r.kind });
  cy.batch(() => {
    cy.elements().remove();
    cy.add(els);
  });
  layout();
  setStatus(`port graph of hurd ${hurd}: ${g.tasks.length} tasks, ${g.ports.length} ports, ${g.rights.length} rights${g.omitted ? `, ${g.omitted} names left out` : ""}`);
}

// ------------------------------------------------------------------ side panel

function setStatus(s: string): void {
  $("status").textContent = s;
}

async function select(id: string): Promise<void> {
  const n = cy.getElementById(id);
  cy.elements().unselect();
  n.select();
  const p = n.data("proc");
  const sel = $("selected");
  if (p) {
    sel.classList.remove("dim");
    sel.innerHTML = `<table><tr><th>PID</th><th>PPID</th><th>PGID</th><th>SID</th><th>UID</th><th>STAT</th><th>TIME</th><th>COMMAND</th></tr>
      <tr><td>${p.pid}</td><td>${p.ppid}</td><td>${p.pgid}</td><td>${p.sid}</td><td>${p.uid < 0 ? "-" : p.uid}</td><td>${esc(p.stat)}</td><td>${Math.round(p.ageMs / 1000)}s</td><td>${esc(p.command)}</td></tr></table>
      <div class="dim">hurd ${esc(p.hurd)}, task ${p.taskId}, serial ${p.serial}</div>`;
  } else if (n.data("group")) {
    const g = n.data("group");
    sel.innerHTML = `${g.count} processes (pids ${g.minPid}–${g.maxPid}) drawn as one node: the view draws at most a dozen children of a process and 1,500 processes in all.`;
  } else if (n.data("port")) {
    const q = n.data("port");
    sel.innerHTML = `<b>${esc(q.label)}</b><br>receiver ${esc(q.receiver || q.kobject || "none")}, ${q.msgcount} queued`;
  } else sel.textContent = id;
  const node = p ? p.id : n.hasClass("task") ? id : "";
  if (node) await showSpace(node);
}

/** A process's IPC space, as mach_port_names would list it, with each port's receiver and holders. */
async function showSpace(node: string): Promise<void> {
  const r = await fetch(`/api/space?node=${encodeURIComponent(node)}`);
  $("space-title").hidden = false;
  if (!r.ok) {
    $("space").innerHTML = `<span class="dim">${esc(((await r.json()) as { error: string }).error)}</span>`;
    return;
  }
  const s = (await r.json()) as WebSpace;
  $("space").innerHTML = `<div class="dim">task ${s.taskId}: ${s.names.length} names</div><table id="space-table"><tr><th>name</th><th>rights</th><th>urefs</th><th>port</th><th>receiver</th><th>also held by</th></tr>${s.names
    .map((e) => `<tr class="right ${e.rights.join(" ")}"><td>${e.name}</td><td>${e.rights.join(", ")}${e.dnrequest ? " (dn-req)" : ""}</td><td>${e.urefs || ""}</td><td>${e.port || ""}</td><td>${esc(e.receiver)}</td><td>${esc(e.holders.slice(0, 6).join(" ") + (e.holders.length > 6 ? ` +${e.holders.length - 6}` : ""))}</td></tr>`)
    .join("")}</table>`;
}

function drawMessages(): void {
  const f = filter();
  const shown = messages.filter((m) => rpcMatches(m.rpc, f) && (!f.hurd || m.hurd === f.hurd) && (!f.pid || (m.from && nodeMatches(m.from, f)) || (m.to && nodeMatches(m.to, f))));
  $("msg-count").textContent = `(${shown.length} shown)`;
  $("messages").innerHTML = shown
    .slice(-LISTED)
    .reverse()
    .map((m) => `<li data-n="${m.n}" title="${esc(m.line)}">${esc(m.line || `${m.from} → ${m.to} ${m.rpc}`)}</li>`)
    .join("");
}

async function openMessage(n: number): Promise<void> {
  const r = await fetch(`/api/message/${n}`);
  const el = $("message");
  el.classList.remove("dim");
  if (!r.ok) {
    el.textContent = ((await r.json()) as { error: string }).error;
    return;
  }
  const d = (await r.json()) as WebMessageDetail;
  el.innerHTML = `<pre id="msg-line">${esc(d.line)}</pre>
    <div class="dim">${esc(d.rpc)}${d.reply ? " (reply)" : ""} · ${esc(d.from || "?")} → ${esc(d.to || "?")} · record ${d.n}</div>
    <h2>Body</h2><pre id="msg-body">${esc(d.body || "(none)")}</pre>
    ${d.rights.length ? `<h2>Rights</h2><pre>${esc(d.rights.join("\n"))}</pre>` : ""}
    ${d.traceUrl ? `<a id="msg-trace" href="${esc(d.traceUrl)}" target="_blank" rel="noopener">trace ${esc(d.traceId)} in Jaeger</a>` : `<span class="dim">not traced${d.traceId ? ` (trace ${esc(d.traceId)})` : ""}</span>`}`;
}

// ------------------------------------------------------------------ wiring

function onState(s: WebState): void {
  state = s;
  const sel = $<HTMLSelectElement>("f-hurd");
  const want = ["", ...s.hurds.map((h) => h.name)];
  if ([...sel.options].map((o) => o.value).join() !== want.join()) {
    const v = sel.value;
    sel.innerHTML = want.map((h) => `<option value="${esc(h)}">${h ? esc(h) : "all"}</option>`).join("");
    sel.value = want.includes(v) ? v : "";
  }
  if (view === "procs") drawProcesses();
  setStatus(`${s.hurds.length} hurd${s.hurds.length === 1 ? "" : "s"}, ${s.hurds.reduce((a, h) => a + h.total, 0)} processes`);
}

function onTraffic(t: WebTraffic): void {
  for (const e of t.edges) {
    const k = `${e.from}>${e.to}`;
    let have = traffic.get(k);
    if (!have) traffic.set(k, (have = { from: e.from, to: e.to, rpcs: new Map() }));
    for (const [rpc, c] of Object.entries(e.rpcs)) have.rpcs.set(rpc, (have.rpcs.get(rpc) ?? 0) + c);
    hot.add(k);
  }
  messages.push(...t.msgs);
  if (messages.length > LISTED * 2) messages.splice(0, messages.length - LISTED);
  dirty = true;
}

setInterval(() => {
  if (!dirty) return;
  dirty = false;
  drawTraffic();
  drawMessages();
}, REDRAW_MS);

const events = new EventSource("/api/events");
events.addEventListener("state", (e) => onState(JSON.parse((e as MessageEvent).data) as WebState));
events.addEventListener("traffic", (e) => onTraffic(JSON.parse((e as MessageEvent).data) as WebTraffic));
events.onerror = () => setStatus("disconnected: retrying…");

cy.on("tap", "node", (e: EventObject) => void select(e.target.id()));
cy.on("tap", "edge.msg", (e: EventObject) => {
  const d = e.target.data();
  $("selected").innerHTML = `<b>${esc(d.source)} → ${esc(d.target)}</b>: ${d.count} messages<table>${Object.entries(d.rpcs as Record<string, number>)
    .sort((a, b) => b[1] - a[1])
    .map(([r, c]) => `<tr><td>${esc(r)}</td><td>${c}</td></tr>`)
    .join("")}</table>`;
});
$("messages").addEventListener("click", (e) => {
  const li = (e.target as HTMLElement).closest("li");
  if (li) void openMessage(Number(li.dataset.n));
});
for (const id of ["f-hurd", "f-pid", "f-rpc"])
  $(id).addEventListener("input", () => {
    dirty = true;
    if (view === "ports" && id === "f-hurd") void drawPorts();
  });
function setView(v: View): void {
  view = v;
  $("tab-procs").classList.toggle("on", v === "procs");
  $("tab-ports").classList.toggle("on", v === "ports");
  cy.elements().remove();
  structure = "";
  if (v === "procs") {
    drawProcesses();
    dirty = true;
  } else void drawPorts();
}
$("tab-procs").addEventListener("click", () => setView("procs"));
$("tab-ports").addEventListener("click", () => setView("ports"));

// For people in the console and for the browser tests: the graph and the page's actions.
(window as unknown as Record<string, unknown>).hurdweb = { cy, state: () => state, traffic, messages, select, openMessage, setView };
