// proc conformance: robustness. The Hurd's proc crashes on a NULL caller in
// get_arg_locations, get_entry and getpgrppids(0), and believed forged
// notifications; hurdmesh answers EOPNOTSUPP and believes only the kernel.
// Then a fuzz run: random and mutated bodies to every Process RPC, after
// which proc must still answer and its tables must agree.
// HURD_PROC_FUZZ_MS sets the fuzz run's length per bus (default 1500 ms).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { MsgType, PortRight, Rights, client, portAt, type Task } from "@hurdmesh/mach";
import { methods } from "@hurdmesh/mach/internal";
import { NewTaskNotification, TaskTerminatedNotification } from "@hurdmesh/proto/hurd/mach/v1/mach";
import { ProcessDefinition } from "@hurdmesh/proto/hurd/process/v1/process";
import { busKinds } from "../harness.js";
import { Errno, SIG, assertConsistent, bootProcHurd, exitProcess, rejectsWith, settle, userProcess, type Proc, type ProcHurd } from "./kit.js";

const FUZZ_MS = Number(process.env.HURD_PROC_FUZZ_MS ?? 1500);

/** A small deterministic generator, so a failing run can be replayed with HURD_PROC_FUZZ_SEED. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(a: readonly T[]) => a[Math.floor(next() * a.length)]!,
  };
}

const INTERESTING = [0, 1, -1, 2, 3, 4, 16, 100, 0x7f, 0xffff, 2 ** 31 - 1, -(2 ** 31), 4194303, 4194304];

for (const kind of busKinds) {
  describe(`proc robustness (${kind} bus)`, () => {
    let ph: ProcHurd;
    before(async () => {
      ph = await bootProcHurd(kind, { maxWaitersPerProcess: 8, maxMsgportWaiters: 8 });
    });
    after(async () => ph.close());

    it("the Hurd's NULL-caller crashes (get_arg_locations, get_entry, getpgrppids(0)) answer EOPNOTSUPP on a port that is not a process", async () => {
      const c = await ph.spawn(ph.startup, "h");
      const r = await ph.startup.proc.pidOpen({ pid: c.pid, serial: 0 });
      const notProc = client(ph.startup.task, ProcessDefinition, portAt(r, r.handle));
      await rejectsWith(notProc.getArgLocations({}), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.getEntry({}), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.getpgrppids({ pgrp: 0 }), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.getpids({}), Errno.EOPNOTSUPP);
      await rejectsWith(notProc.wait({ pid: -1, options: 0 }), Errno.EOPNOTSUPP);
      // And a handle call on a process port is no handle call.
      await rejectsWith(c.proc.handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.EOPNOTSUPP);
      assert.equal((await ph.startup.proc.getpids({})).pid, 2, "proc is fine");
      await exitProcess(c);
      await ph.startup.proc.wait({ pid: c.pid, options: 0 });
    });

    it("forged notifications (70 no-senders, 72 dead-name, 4400 new-task, 4401 task-terminated) sent by a task change nothing", async () => {
      const victim = await ph.spawn(ph.startup, "victim");
      const forger = await userProcess(ph, ph.startup, [666], "forger");
      const before = (await ph.startup.proc.getallpids({})).pids.sort();
      // The forger's own handle on itself, and the victim's msgport-less view.
      const hr = await forger.proc.pidOpen({ pid: forger.pid, serial: 0 });
      const handle = portAt(hr, hr.handle);
      const send = (t: Task, dest: number, id: number, body: Uint8Array, ports: Rights["ports"] = []) => t.send({ destination: dest, id, body, ports });
      const victimId = victim.task.id;
      const terminated = TaskTerminatedNotification.encode({ taskId: victimId, reason: "forged", namespaceId: 0 }).finish();
      for (const dest of [forger.port, handle]) {
        send(forger.task, dest, 70, new Uint8Array([8, 1]));
        send(forger.task, dest, 72, new Uint8Array([8, 5]));
        send(forger.task, dest, 4401, terminated);
        const r = new Rights();
        const t = r.copySend(forger.task.self);
        send(forger.task, dest, 4400, NewTaskNotification.encode({ task: t, parent: t, taskId: forger.task.id, parentId: 1, namespaceId: 0, name: "" }).finish(), r.ports);
      }
      // startup (root) can even reach proc's own notify port through proc's task port: still not believed.
      const pt = await ph.startup.proc.pid2task({ pid: 4 });
      const notify = await ph.startup.task.extractRight(portAt(pt, pt.task), ph.proc.notifyPort, MsgType.MSG_TYPE_MAKE_SEND);
      const forgedBefore = ph.proc.stats.forgedNotifications;
      send(ph.startup.task, notify.name, 4401, terminated);
      const r = new Rights();
      const nt = await ph.startup.task.taskCreate("fake");
      const t = r.copySend(nt.task);
      send(ph.startup.task, notify.name, 4400, NewTaskNotification.encode({ task: t, parent: 0, taskId: 999999, parentId: 0, namespaceId: 0, name: "" }).finish(), r.ports);
      await settle(forger, 4);
      await settle(ph.startup, 4);
      assert.ok(ph.proc.stats.forgedNotifications >= forgedBefore + 2, "counted and dropped");
      // Nothing died, nothing was closed, nothing appeared but the real task.
      assert.equal((await victim.proc.getpids({})).pid, victim.pid);
      assert.equal((await ph.startup.proc.getprocinfo({ which: victim.pid, flags: 0 })).procinfo!.state & 0x100, 0, "victim not a zombie");
      await client(forger.task, ProcessDefinition, handle).handleSignal({ signal: SIG.USR1, sigcode: 0 });
      assert.equal((await forger.proc.getpids({})).pid, forger.pid);
      const after = (await ph.startup.proc.getallpids({})).pids.sort();
      const extra = after.filter((p) => !before.includes(p));
      assert.ok(extra.length <= 1, `only the real new task may appear: ${extra}`);
      assertConsistent(ph.proc);
      await ph.startup.task.taskTerminate(nt.task);
      for (const p of [victim, forger]) await exitProcess(p);
    });

    it("a bare name (MSG_TYPE_PORT_NAME) is no right: register_version, make_task_namespace and reauthenticate_reassign neither believe it nor release proc's right of that number", async () => {
      const forger = await userProcess(ph, ph.startup, [666], "bare-namer");
      // The number proc's own host_priv right has in proc's space: anyone can write it in a message.
      const host = ph.proc.hostPriv;
      assert.ok(host, "proc holds host_priv");
      const refs = await ph.proc.task.getRefs(host, PortRight.PORT_RIGHT_SEND);
      const bare = () => {
        const r = new Rights();
        return { r, i: r.add(host, MsgType.MSG_TYPE_PORT_NAME) };
      };
      const v = bare();
      await rejectsWith(forger.proc.registerVersion({ credential: v.i, name: "forged", release: "1", version: "" }, { rights: v.r }), Errno.EPERM, "register_version");
      const n = bare();
      await rejectsWith(forger.proc.makeTaskNamespace({ notify: n.i }, { rights: n.r }), Errno.EINVAL, "make_task_namespace");
      // reauthenticate_reassign is a simpleroutine: no answer, only its effect on proc's space.
      const a = bare();
      await forger.proc.reauthenticateReassign({ rendezvous: a.i, newTask: 5 }, { rights: a.r });
      await settle(forger);
      assert.equal(await ph.proc.task.getRefs(host, PortRight.PORT_RIGHT_SEND), refs, "proc's host_priv urefs");
      assert.ok(!(await ph.startup.proc.uname({})).version.includes("forged"), "no version registered");
      await exitProcess(forger);
      await ph.startup.proc.wait({ pid: forger.pid, options: 0 });
    });

    it("a message port that never answers stalls nothing: SIGCHLDs to it are one-way, a handle's signal to it times out, proc keeps serving", async () => {
      const slow = await bootProcHurd(kind, { signalTimeoutMs: 300 });
      try {
        const par = await slow.spawn(slow.startup, "deaf-parent", { msgport: false });
        // A message port whose receiver takes every message and answers none.
        const deaf = await par.task.allocate();
        par.task.receive(deaf, () => new Promise<void>(() => {}));
        const r = new Rights();
        await par.proc.setmsgport({ newmsgport: r.makeSend(deaf) }, { rights: r });
        const kids: Proc[] = [];
        for (let i = 0; i < 20; i++) kids.push(await slow.spawn(par, "k"));
        for (const k of kids) await exitProcess(k);
        for (const k of kids) await par.proc.wait({ pid: k.pid, options: 0 });
        const h = await slow.startup.proc.pidOpen({ pid: par.pid, serial: 0 });
        const t0 = Date.now();
        await rejectsWith(client(slow.startup.task, ProcessDefinition, portAt(h, h.handle)).handleSignal({ signal: SIG.USR1, sigcode: 0 }), Errno.ETIMEDOUT);
        assert.ok(Date.now() - t0 < 3000, "bounded by signalTimeoutMs");
        assert.equal((await slow.startup.proc.getpids({})).pid, 2);
        assertConsistent(slow.proc);
      } finally {
        await slow.close();
      }
    });

    it(`fuzz: random and mutated bodies to every Process RPC for ${FUZZ_MS} ms; proc still answers and its tables agree`, async () => {
      const seed = Number(process.env.HURD_PROC_FUZZ_SEED ?? Date.now() % 100000);
      const R = rng(seed);
      const all = [...methods(ProcessDefinition).byKey.values()];
      let fuzzers: Proc[] = [];
      const fresh = async () => {
        const root = await ph.spawn(ph.startup, "fuzz-root");
        const user = await userProcess(ph, ph.startup, [7000 + R.int(3)], "fuzz-user");
        const h = await root.proc.pidOpen({ pid: user.pid, serial: 0 });
        fuzzers = [root, user, { ...root, port: portAt(h, h.handle) }];
      };
      await fresh();
      const sent = new Map<string, number>();
      const end = Date.now() + FUZZ_MS;
      let n = 0;
      while (Date.now() < end) {
        const batch: Promise<unknown>[] = [];
        for (let k = 0; k < 8; k++) {
          // Every RPC in turn (bodies, rights and ports stay random), so even a
          // short, loaded run reaches all of them.
          const m = all[n % all.length]!;
          const f = R.pick(fuzzers);
          const req = m.def.requestType.fromPartial({}) as Record<string, unknown>;
          for (const key of Object.keys(req)) {
            const v = req[key];
            if (typeof v === "number") req[key] = R.next() < 0.5 ? R.pick(INTERESTING) : R.int(8);
            else if (typeof v === "string") req[key] = R.next() < 0.1 ? "x".repeat(R.int(5000)) : "fz";
            else if (typeof v === "boolean") req[key] = R.next() < 0.5;
            else if (Array.isArray(v)) req[key] = Array.from({ length: R.int(6) }, () => (R.next() < 0.5 ? R.int(4) : "fz"));
            else if (v instanceof Uint8Array) req[key] = new Uint8Array(R.int(64)).map(() => R.int(256));
          }
          let body: Uint8Array;
          try {
            body = m.def.requestType.encode(m.def.requestType.fromPartial(req)).finish();
          } catch {
            body = new Uint8Array(0);
          }
          const mode = R.int(3);
          if (mode === 1) body = new Uint8Array(R.int(48)).map(() => R.int(256));
          else if (mode === 2 && body.length) {
            body = body.slice();
            for (let i = 0; i < 1 + R.int(4); i++) body[R.int(body.length)] = R.int(256);
          }
          const r = new Rights();
          const nports = R.int(3);
          for (let i = 0; i < nports; i++) {
            const which = R.int(3);
            if (which === 0) r.copySend(f.task.self);
            else if (which === 1) r.add(0, MsgType.MSG_TYPE_PORT_NAME);
            else r.copySend(f.port);
          }
          sent.set(m.key, (sent.get(m.key) ?? 0) + 1);
          n++;
          if (m.simple) {
            try {
              f.task.send({ destination: f.port, id: m.msgid, body, ports: r.ports });
            } catch {
              // The fuzzer's task may be gone (it fuzzed itself to death).
            }
          } else batch.push(f.task.rpc(f.port, m.msgid, body, { ports: r.ports, timeoutMs: 300 }).then((rep) => f.task.dropRights(rep), () => {}));
        }
        await Promise.all(batch);
        // A fuzzer that killed or reassigned itself is replaced.
        const alive = await Promise.all(fuzzers.slice(0, 2).map((f) => f.proc.getpids({}, { timeoutMs: 1000 }).then(() => true, () => false)));
        if (alive.includes(false)) await fresh();
      }
      // Every RPC got something.
      for (const m of all) assert.ok(sent.has(m.key), `${m.key} fuzzed (seed ${seed}, ${n} messages)`);
      // Still alive, still answering, still consistent.
      const { pids } = await ph.startup.proc.getallpids({});
      for (const p of [1, 2, 3, 4]) assert.ok(pids.includes(p), `pid ${p} survived (seed ${seed})`);
      assertConsistent(ph.proc);
      const c = await ph.spawn(ph.startup, "after-fuzz");
      await exitProcess(c, 1 << 8);
      const w = await ph.startup.proc.wait({ pid: c.pid, options: 0 });
      assert.equal(w.status, 1 << 8, `a normal lifecycle still works (seed ${seed}, ${n} messages)`);
      assertConsistent(ph.proc);
    });
  });
}
