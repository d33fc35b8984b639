// The gateway (services/kernel/src/gateway.ts): proc_getpids made by a gRPC
// client through the kernel's edge, against the same call made natively by
// a NATS-attached task (init's, through libhurd) in the same run, with the
// hurd booted on NATS as `hurd up --nats` boots it. The gRPC client is what
// a user writes (a generated grpc-js client, the console's metadata); the
// difference is the edge: gRPC over loopback, the caller's check, the
// translation to a Mach message and back. Beside them, a kernel call through
// the same edge that sends no message (task_info): what gRPC itself costs
// here, client and server in this one process.
import * as grpc from "@grpc/grpc-js";
import { Edge } from "@hurdmesh/kernel";
import { grpcClientOf } from "@hurdmesh/mach/edge";
import { MachDefinition } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { bootRig } from "../rig.js";
import type { BenchContext, Opened, RowGroup } from "./types.js";

export const GATEWAY_GETPIDS = "Process/Getpids through the gateway (gRPC edge)";
export const NATIVE_GETPIDS = "Process/Getpids native (NATS-attached task)";
export const EDGE_TASKINFO = "Mach/TaskInfo through the edge (no message)";

export const gateway: RowGroup = {
  name: "gateway",
  async open(ctx: BenchContext): Promise<Opened> {
    const r = await bootRig("nats", ctx.natsUrl, ctx.log);
    const con = await r.init.makeConsole();
    const edge = new Edge(r.kernel);
    await edge.listen("127.0.0.1:0");
    const c = new (grpcClientOf(ProcessDefinition))(`127.0.0.1:${edge.port}`, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set("hurd-task", String(con.taskId));
    md.set("hurd-token", con.token);
    const viaGateway = () =>
      new Promise((resolve, reject) => c.getpids({}, md, { deadline: Date.now() + 10_000 }, (e, rep) => (e ? reject(e) : resolve(rep))));
    const native = () => r.parent.proc.getpids({});
    const m = new (grpcClientOf(MachDefinition))(`127.0.0.1:${edge.port}`, grpc.credentials.createInsecure());
    const edgeOnly = () =>
      new Promise((resolve, reject) => m.taskInfo({ task: 0 }, md, { deadline: Date.now() + 10_000 }, (e, rep) => (e ? reject(e) : resolve(rep))));
    // Both paths end to end before measuring (the gateway's first call reads the proto files).
    await viaGateway();
    await native();
    await edgeOnly();
    return {
      subjects: [
        { name: GATEWAY_GETPIDS, bus: "nats", call: viaGateway },
        { name: NATIVE_GETPIDS, bus: "nats", call: native },
        { name: EDGE_TASKINFO, bus: "nats", call: edgeOnly },
      ],
      async close() {
        c.close();
        m.close();
        await edge.close();
        await r.close();
      },
    };
  },
};
