// Host-wide state (host.c): privileged ports, standard exec data, uname.
import { Errno, HurdError, MsgType, optionalRight, type Impl } from "@hurdmesh/mach";
import type { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { checkUid } from "./proc.js";
import type { PortObject, ProcServer } from "./server.js";

type H = Impl<typeof ProcessDefinition, PortObject>;

const MAX_EXECDATA = 64;
const MAX_VERSIONS = 64;
const MAX_NOTIFIERS = 64;

/** What the host RPCs keep: the standard exec data, exec servers' notify ports, registered versions (written through as one record). */
export interface HostData {
  execPorts: number[] | null;
  execInts: number[];
  notifiers: number[];
  versions: Map<string, string>;
}

export function host(srv: ProcServer): H {
  const d = srv.hostData;
  return {
    /** proc_getprivports (24004): root only. */
    getprivports(_req, ctx) {
      const p = srv.caller(ctx);
      if (!checkUid(p, 0)) throw new HurdError(Errno.EPERM, "only root gets the privileged ports");
      return {
        hostPriv: srv.hostPriv ? ctx.reply.copySend(srv.hostPriv) : 0,
        deviceMaster: srv.deviceMaster ? ctx.reply.copySend(srv.deviceMaster) : 0,
      };
    },

    /** proc_setexecdata (24006): root only; replaces the standard exec data. */
    setexecdata(req, ctx) {
      const p = srv.caller(ctx);
      if (!checkUid(p, 0)) throw new HurdError(Errno.EPERM, "only root sets the exec data");
      if (req.ports.length > MAX_EXECDATA || req.ints.length > MAX_EXECDATA) throw new HurdError(Errno.E2BIG, `at most ${MAX_EXECDATA} entries`);
      ctx.keepRights = true;
      const ports = req.ports.map((i) => optionalRight(ctx.msg.ports, i));
      for (const old of d.execPorts ?? []) srv.drop(old);
      d.execPorts = ports;
      d.execInts = req.ints.slice();
      srv.journal?.host();
      return {};
    },

    /** proc_getexecdata (24007): anyone; ENOENT before it is set. */
    getexecdata(_req, ctx) {
      srv.caller(ctx);
      if (!d.execPorts) throw new HurdError(Errno.ENOENT, "no exec data yet");
      return { ports: d.execPorts.map((n) => (n ? ctx.reply.copySend(n) : ctx.reply.add(0, MsgType.MSG_TYPE_PORT_NAME))), ints: d.execInts };
    },

    /**
     * proc_execdata_notify (24008): the port is kept for an exec server; hurdmesh
     * has no exec server, so nothing calls exec_setexecdata on it yet.
     */
    execdataNotify(req, ctx) {
      srv.caller(ctx);
      const r = ctx.right(req.notify);
      // Refused before the right is kept: the server releases what the request brought (a right, never a bare name).
      if (d.notifiers.length >= MAX_NOTIFIERS) throw new HurdError(Errno.EAGAIN, `${MAX_NOTIFIERS} notifiers registered`);
      ctx.keepRights = true;
      d.notifiers.push(r.name);
      srv.journal?.host();
      return {};
    },

    /** proc_uname (24009). */
    uname(_req, ctx) {
      srv.caller(ctx);
      const v = [...d.versions].map(([n, r]) => `${n} ${r}`).join("; ");
      return { sysname: "GNU", nodename: "hurdmesh", release: "0.1", version: `hurdmesh${v ? ` (${v})` : ""}`, machine: process.arch };
    },

    /** proc_register_version (24010): the credential must be host_priv. */
    registerVersion(req, ctx) {
      srv.caller(ctx);
      // A bare name is a number the caller wrote, not the port: only a right counts.
      const cred = optionalRight(ctx.msg.ports, req.credential);
      // The same port has the same name in one space: comparing names compares ports.
      const ok = cred !== 0 && cred === srv.hostPriv;
      srv.drop(cred);
      ctx.keepRights = true;
      if (!ok) throw new HurdError(Errno.EPERM, "the credential is not the host port");
      if (!d.versions.has(req.name) && d.versions.size >= MAX_VERSIONS) throw new HurdError(Errno.EAGAIN, "too many versions");
      d.versions.set(req.name.slice(0, 64), `${req.release.slice(0, 64)} ${req.version.slice(0, 128)}`.trim());
      srv.journal?.host();
      return {};
    },
  };
}
