import { describe, expect, it } from "vitest";
import { run_shell_command, spawn_command } from "../src/dbutil.js";
import { libcBindings } from "../src/libc.js";
import { spawnWarmUp, waitpidNohang } from "../src/spawn.js";

// A file of its own: a fresh module state, in which nothing has bound a spawn call yet.
describe("spawnWarmUp", () => {
  it("binds every C call of spawning and reaping a command, so the first spawn binds none", async () => {
    const before = libcBindings();
    spawnWarmUp();
    const warm = libcBindings();
    expect(warm).toBeGreaterThan(before);
    const r = spawn_command((_d: null, child) => run_shell_command(child, Buffer.from("exit 3"), "/bin/sh"), null, true);
    expect(r).not.toBeNull();
    let status: [number, number] | null = null;
    for (let i = 0; i < 1000 && status === null; i++) {
      status = waitpidNohang(r!.pid);
      if (status === null) await new Promise((res) => setTimeout(res, 5));
    }
    expect(status![1] >> 8).toBe(3);
    expect(libcBindings()).toBe(warm);
  });
});
