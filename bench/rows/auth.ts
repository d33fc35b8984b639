// The auth server's two operations that matter for throughput: auth_makeauth
// (a user deriving a handle from its own) and a full reauthentication
// rendezvous through @hurdmesh/iohelp (user: fresh R, io_reauthenticate to the
// server as a simpleroutine, auth_user_authenticate; server:
// auth_server_authenticate with its port as newport; R destroyed). Measured on
// NATS (kernel, auth, user and server each on their own connection) and on
// the in-process hub. A rendezvous is three messages and two of them RPCs
// through auth, so it should cost about three brokered Ping RPCs, not more.
import { Kernel, TrapServer } from "@hurdmesh/kernel";
import { client, LocalHub, MsgType, portAt, Rights, serve, Task, type Bus } from "@hurdmesh/mach";
import { NatsBus } from "@hurdmesh/mach/nats";
import { AuthDefinition } from "@hurdmesh/proto/hurd/auth/v1/auth";
import { PingDefinition } from "@hurdmesh/proto/hurd/bench/v1/ping";
import { Auth } from "@hurdmesh/auth";
import { serverAuthenticate, userReauthenticate } from "@hurdmesh/iohelp";

import type { BenchContext, RowGroup } from "./types.js";

/** Names boot gives the rights it hands out (any free names). */
const USER_HANDLE = 0x1000;
const SERVER_HANDLE = 0x1001;
const SERVER_PORT = 0x1002;

interface AuthRig {
  makeauth(): Promise<unknown>;
  rendezvous(): Promise<unknown>;
  close(): Promise<void>;
}

let systems = 0;

async function rig(kind: "local" | "nats", ctx: BenchContext): Promise<AuthRig> {
  const system = `benchauth${process.pid}x${++systems}`;
  const hub = new LocalHub();
  const buses: Bus[] = [];
  const connect = async (): Promise<Bus> => {
    const b = kind === "local" ? hub.connect() : await NatsBus.connect(ctx.natsUrl, `bench-auth-${kind}`);
    buses.push(b);
    return b;
  };
  const kernel = new Kernel({ system }, { log: (l) => ctx.log(`kernel: ${l}`) });
  const kbus = await connect();
  const trap = new TrapServer(kernel, kbus);
  trap.start();
  await kbus.flush();
  const b = kernel.bootTask({ name: "bench-boot" });
  const boot = await Task.attach({ bus: await connect(), system, taskId: b.task.id, token: b.token });
  const spawn = async (name: string) => {
    const c = await boot.taskCreate(name);
    return { port: c.task, task: await Task.attach({ bus: await connect(), system, taskId: c.taskId, token: c.token }) };
  };
  const a = await spawn("bench-auth");
  const auth = await Auth.start(a.task);
  const u = await spawn("bench-user");
  const s = await spawn("bench-server");
  // boot holds root (as init would) and hands each side a handle of its own.
  const root = (await boot.extractRight(a.port, auth.root, MsgType.MSG_TYPE_MAKE_SEND)).name;
  const mk = async (euids: number[]) => {
    const res = await client(boot, AuthDefinition, root).makeAuth({ euids, auids: euids, egids: [100], agids: [100] });
    return portAt(res, res.newhandle);
  };
  await boot.insertRight(u.port, USER_HANDLE, await mk([1000]), MsgType.MSG_TYPE_MOVE_SEND);
  await boot.insertRight(s.port, SERVER_HANDLE, await mk([4]), MsgType.MSG_TYPE_MOVE_SEND);
  // The server: Ping.Notice stands for io_reauthenticate (a simpleroutine carrying R).
  const q = await s.task.allocate();
  serve(s.task, PingDefinition, {
    notice: async (req, c) => {
      await serverAuthenticate(s.task, SERVER_HANDLE, c.right(req.port, MsgType.MSG_TYPE_MOVE_SEND).name, q).catch(() => {});
      return {};
    },
  }).add(q, {});
  await boot.insertRight(u.port, SERVER_PORT, (await boot.extractRight(s.port, q, MsgType.MSG_TYPE_MAKE_SEND)).name, MsgType.MSG_TYPE_MOVE_SEND);
  const user = client(u.task, AuthDefinition, USER_HANDLE);
  const io = client(u.task, PingDefinition, SERVER_PORT);
  const ask = (R: number) => {
    const r = new Rights();
    return io.notice({ port: r.makeSend(R) }, { rights: r });
  };
  const want = { euids: [1000], auids: [], egids: [100], agids: [] };
  const r = {
    async makeauth() {
      const res = await user.makeAuth(want);
      u.task.deallocate(portAt(res, res.newhandle)).catch(() => {});
    },
    async rendezvous() {
      const np = await userReauthenticate(u.task, USER_HANDLE, ask);
      u.task.deallocate(np).catch(() => {});
    },
    async close() {
      await auth.close();
      for (const t of [u.task, s.task, a.task, boot]) t.abandon();
      trap.stop();
      kernel.close();
      for (const x of buses) await x.close();
    },
  };
  // Both paths end to end before measuring: the wiring is right or we stop here.
  await r.makeauth();
  await r.rendezvous();
  return r;
}

/**
 * Opened, not run: the bench measures makeauth and the rendezvous interleaved
 * with the brokered Ping of the same run, so "a rendezvous costs about three
 * RPCs" compares the same seconds of a noisy machine.
 */
function group(kind: "local" | "nats"): RowGroup {
  return {
    name: `auth-${kind}`,
    async open(ctx) {
      const r = await rig(kind, ctx);
      return {
        subjects: [
          { name: "auth_makeauth", bus: kind, call: r.makeauth },
          { name: "auth rendezvous (full reauth)", bus: kind, call: r.rendezvous },
        ],
        close: () => r.close(),
      };
    },
  };
}

export const authNats = group("nats");
export const authLocal = group("local");
