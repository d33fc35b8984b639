// What the server sends the page (JSON), shared by both sides: the page
// imports these types only, so its bundle carries none of the server.

/** A process as the page shows it: ps's columns. */
export interface WebProc {
  /** Node id: `<hurd>/<pid>`. */
  id: string;
  hurd: string;
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /** Owner uid, or -1 for a process with no ids. */
  uid: number;
  /** procps STAT letters (S, T, Z, t; s for a session leader). */
  stat: string;
  /** Elapsed time since start, ms. */
  ageMs: number;
  command: string;
  taskId: number;
  serial: number;
}

/** Processes beyond the view's bounds, shown as one node (see aggregate.ts). */
export interface WebGroup {
  /** Node id: `<hurd>/+<parent pid>` (or `<hurd>/+rest`). */
  id: string;
  hurd: string;
  /** The node it hangs under (a process id), or "" for the hurd itself. */
  parent: string;
  count: number;
  /** The lowest and highest pid it stands for. */
  minPid: number;
  maxPid: number;
}

export interface WebHurd {
  name: string;
  /** The hurd it is nested in ("" for the root hurd). */
  parent: string;
  namespaceId: number;
  /** Processes it has in all (shown or grouped). */
  total: number;
  procs: WebProc[];
  groups: WebGroup[];
}

/** The process tree of every hurd the session sees, root first. */
export interface WebState {
  hurds: WebHurd[];
  /** When it was read, ms since the epoch. */
  at: number;
}

/** One message, as the list and the graph's edges show it. */
export interface WebMessage {
  /** The kernel's record number (GET /api/message/<n> has the whole of it). */
  n: number;
  ts: number;
  hurd: string;
  /** Node ids of the sender and the receiver ("" when unknown or not delivered). */
  from: string;
  to: string;
  rpc: string;
  reply: boolean;
  /** Reply code or send error (0: none). */
  code: number;
  /** The rpctrace line. */
  line: string;
}

/** Traffic since the last batch: counts per edge (sender node -> receiver node), per RPC. */
export interface WebTraffic {
  edges: { from: string; to: string; count: number; rpcs: Record<string, number> }[];
  /** The newest messages of the batch (at most a page's worth), oldest first. */
  msgs: WebMessage[];
  /** Messages in the batch not listed (rate limit), and records the kernel dropped for this view. */
  unlisted: number;
  dropped: number;
}

/** GET /api/message/<n>. */
export interface WebMessageDetail extends WebMessage {
  /** The body decoded by its proto type, as rpctrace prints it ("" when it has none). */
  body: string;
  /** Rights moved, as rpctrace writes them. */
  rights: string[];
  traceId: string;
  /** The message's trace in Jaeger ("" when it was not traced). */
  traceUrl: string;
}

/** One name in a task's IPC space (what mach_port_names and mach_port_get_refs say). */
export interface WebName {
  name: number;
  /** "receive", "send", "send-once", "port-set", "dead-name" (several when a name holds several). */
  rights: string[];
  urefs: number;
  /** The port's kernel id (0 for a dead name or a port set). */
  port: number;
  /** Who holds its receive right (node id or "kernel: task 12"), and who else holds rights to it. */
  receiver: string;
  holders: string[];
  dnrequest: boolean;
}

/** GET /api/space?node=<hurd>/<pid>. */
export interface WebSpace {
  node: string;
  taskId: number;
  names: WebName[];
}

/** GET /api/ports?hurd=<name>: the port graph of a hurd, as cytoscape elements. */
export interface WebPorts {
  hurd: string;
  tasks: { id: string; label: string; taskId: number }[];
  ports: { id: string; label: string; receiver: string; kobject: string; msgcount: number; dead: boolean }[];
  /** Rights as edges from a task to the port it names. */
  rights: { id: string; task: string; port: string; kind: "receive" | "send" | "send-once" | "dead-name"; urefs: number; name: number }[];
  /** Names left out beyond the view's bound (ask for one task's space instead). */
  omitted: number;
}
