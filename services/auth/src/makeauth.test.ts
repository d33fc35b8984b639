// The makeauth rule on its own (auth/auth.c's S_auth_makeauth), without a kernel.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { permits } from "./makeauth.js";
import { authConfig } from "./config.js";
import type { Ids } from "./handles.js";

const h = (o: Partial<Ids>): Ids => ({ euids: [], auids: [], egids: [], agids: [], ...o });

describe("permits (auth_makeauth's rule)", () => {
  it("uid 0 effective or available anywhere in the union allows anything", () => {
    const want = h({ euids: [1, 2], auids: [3], egids: [4], agids: [5] });
    assert.equal(permits([h({ euids: [0] })], want), true);
    assert.equal(permits([h({ auids: [0] })], want), true);
    assert.equal(permits([h({ euids: [9] }), h({ auids: [7, 0] })], want), true);
    assert.equal(permits([h({ egids: [0], agids: [0] })], want), false, "gid 0 is not root");
  });

  it("every requested uid must be a uid (effective or available) of some handle", () => {
    const union = [h({ euids: [10] }), h({ auids: [20] })];
    assert.equal(permits(union, h({ euids: [20], auids: [10, 10] })), true);
    assert.equal(permits(union, h({ euids: [30] })), false);
    assert.equal(permits(union, h({ auids: [10, 30] })), false);
  });

  it("every requested gid must be a gid of some handle; uids and gids do not mix", () => {
    const union = [h({ euids: [10], egids: [100] }), h({ agids: [200] })];
    assert.equal(permits(union, h({ egids: [200], agids: [100] })), true);
    assert.equal(permits(union, h({ egids: [300] })), false);
    assert.equal(permits(union, h({ egids: [10] })), false);
    assert.equal(permits(union, h({ euids: [100] })), false);
  });

  it("asking for nothing is always allowed, even with nothing", () => {
    assert.equal(permits([h({})], h({})), true);
  });
});

describe("authConfig", () => {
  it("clamps waiting slots to a quarter of the delivery window, so partners still get through", () => {
    assert.equal(authConfig({ maxPendingPerSide: 1000 }, 256).maxPendingPerSide, 64);
    assert.equal(authConfig({}, 8).maxPendingPerSide, 2);
  });
  it("refuses non-positive or fractional bounds", () => {
    assert.throws(() => authConfig({ maxHandles: 0 }), RangeError);
    assert.throws(() => authConfig({ rendezvousWaitMs: 1.5 }), RangeError);
  });
});
