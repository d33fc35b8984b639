import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defaultKernelConfig, kernelConfig } from "./config.js";
import { limitsFromEnv } from "./limits-env.js";

describe("the kernel's limits from its environment (compose, Kubernetes)", () => {
  it("sets the kernel's totals and a new subhurd's defaults; sizes take K, M, G", () => {
    const c = kernelConfig(
      limitsFromEnv({ HURD_MAX_TASKS: "1000", HURD_MAX_QUEUED_BYTES: "64M", HURD_SUBHURD_MAX_TASKS: "50", HURD_SUBHURD_MAX_QUEUED_BYTES: "2m", HURD_MAX_NAMES_PER_TASK: "4K" }),
    );
    assert.equal(c.maxTasks, 1000);
    assert.equal(c.maxQueuedBytes, 64 * 1024 * 1024);
    assert.equal(c.maxNamesPerTask, 4096);
    assert.deepEqual(c.hurdLimits, { ...defaultKernelConfig.hurdLimits, maxTasks: 50, maxQueuedBytes: 2 * 1024 * 1024 });
    assert.equal(c.maxPorts, defaultKernelConfig.maxPorts);
  });

  it("unset or empty variables keep the defaults", () => {
    assert.deepEqual(limitsFromEnv({}), {});
    assert.deepEqual(limitsFromEnv({ HURD_MAX_TASKS: "" }), {});
  });

  it("refuses what is not a whole number, naming the variable", () => {
    for (const bad of ["-1", "many", "1.5", "12T", "9".repeat(20)])
      assert.throws(() => limitsFromEnv({ HURD_SUBHURD_MAX_PORTS: bad }), new RegExp(`^Error: HURD_SUBHURD_MAX_PORTS=${bad.slice(0, 5)}.*not a whole number`));
  });
});
