// A Hurd hacker looks for `proc_getpids`, not for `getpids` in an object
// literal: every RPC of proc, auth and startup, and every kernel call, names its implementation in
// one line, with the MIG id the proto declares (`proc_getpids (24016)`), so
// one grep of the RPC's Hurd name finds it.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { methods, type ServiceDef } from "@hurdmesh/mach/internal";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { StartupDefinition } from "@hurdmesh/proto/hurd/startup/v1/startup";

const root = new URL("..", import.meta.url).pathname;

/** GetArgLocations -> get_arg_locations: the proto keeps the Hurd's words, in CamelCase. */
const snake = (name: string) => name.replace(/(?<=[a-z0-9])([A-Z])/g, "_$1").toLowerCase();

interface Server {
  def: ServiceDef;
  dir: string;
  /** The routine's name in the Hurd's .defs file. */
  hurdName(method: string): string;
}

// auth.defs writes its routines as one word where the proto splits them.
const AUTH_NAMES: Record<string, string> = { GetIds: "auth_getids", MakeAuth: "auth_makeauth" };

const SERVERS: Server[] = [
  { def: ProcessDefinition, dir: "services/proc/src", hurdName: (m) => `proc_${snake(m)}` },
  { def: AuthDefinition, dir: "services/auth/src", hurdName: (m) => AUTH_NAMES[m] ?? `auth_${snake(m)}` },
  { def: StartupDefinition, dir: "services/init/src", hurdName: (m) => `startup_${snake(m)}` },
  // The kernel's calls by their Mach names (mach_port_mod_refs, task_create);
  // hurdmesh's own calls by theirs, MsgSend being mach_msg's send as a call.
  { def: MachDefinition, dir: "services/kernel/src", hurdName: (m) => (m === "MsgSend" ? "mach_msg" : m.startsWith("Port") ? `mach_${snake(m)}` : snake(m)) },
];

function sources(dir: string): string {
  let text = "";
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) text += readFileSync(join(e.parentPath, e.name), "utf8");
  }
  return text;
}

describe("every Hurd RPC names its implementation with its msgid", () => {
  for (const s of SERVERS) {
    it(`${s.def.name}: "<hurd_name> (<msgid>)" in ${s.dir}`, () => {
      const text = sources(join(root, s.dir));
      const missing: string[] = [];
      for (const info of methods(s.def).byKey.values()) {
        const name = s.hurdName(info.def.name);
        // "proc_getpids (24016)", or with the interface: "auth_getids (auth.defs 25000)",
        // "task_for_id (hurdmesh, 4908)", "mach_msg (hurdmesh msg_send, 4904)".
        if (!new RegExp(`\\b${name} \\((?:[\\w.]+(?: [\\w.]+)?,? )?${info.msgid}\\)`).test(text)) missing.push(`${name} (${info.msgid})`);
      }
      assert.deepEqual(missing, [], `no line names ${missing.join(", ")}`);
    });
  }
});
