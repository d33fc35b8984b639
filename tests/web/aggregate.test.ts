// hurd web's bounds: 10,000 processes still make a drawable view (a dozen
// children per parent as nodes, the rest one group; at most VIEW_BOUNDS.maxNodes
// nodes over the view), and every process is either a node or counted in a group.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ProcInfo } from "@hurdmesh/proto/hurd/process/v1/process";
import { VIEW_BOUNDS, viewOf } from "@hurdmesh/web";

const proc = (pid: number, ppid: number): ProcInfo => ({ ...ProcInfo.fromPartial({}), pid, ppid, taskId: pid, command: `p${pid}` });

/** Nodes plus what the groups stand for. */
const accounted = (h: ReturnType<typeof viewOf>["hurd"]) => h.procs.length + h.groups.reduce((a, g) => a + g.count, 0);

describe("hurd web's view of many processes", () => {
  it("10,000 children of one parent: a dozen nodes and one group", () => {
    const ps = [proc(1, 1), ...Array.from({ length: 10_000 }, (_, i) => proc(i + 2, 1))];
    const { hurd, used } = viewOf("h", "", 1, ps, VIEW_BOUNDS.maxNodes);
    assert.equal(used, 1 + VIEW_BOUNDS.perParent);
    assert.deepEqual(hurd.groups.map((g) => [g.id, g.parent, g.count, g.minPid, g.maxPid]), [["h/+1", "h/1", 10_000 - VIEW_BOUNDS.perParent, 2 + VIEW_BOUNDS.perParent, 10_001]]);
    assert.equal(accounted(hurd), ps.length);
  });

  it("10,000 in a chain: maxNodes nodes and one group for the rest", () => {
    const ps = [proc(1, 1), ...Array.from({ length: 9_999 }, (_, i) => proc(i + 2, i + 1))];
    const { hurd, used } = viewOf("h", "", 1, ps, VIEW_BOUNDS.maxNodes);
    assert.equal(used, VIEW_BOUNDS.maxNodes);
    assert.equal(hurd.groups.length, 1);
    assert.equal(hurd.groups[0]!.id, "h/+rest");
    assert.equal(hurd.total, 10_000);
    assert.equal(accounted(hurd), 10_000);
  });

  it("a small hurd is all nodes", () => {
    const { hurd } = viewOf("h", "", 1, [proc(1, 1), proc(2, 1), proc(4, 2)], VIEW_BOUNDS.maxNodes);
    assert.deepEqual(hurd.procs.map((p) => p.id), ["h/1", "h/2", "h/4"]);
    assert.deepEqual(hurd.groups, []);
  });
});
