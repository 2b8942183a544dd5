import { closeSync, readFileSync, readSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { run_shell_command, spawn_command } from "../src/dbutil.js";
import { NOFILE_ENV, keepInheritedNofile, nofileSoftLimit } from "../src/nofile.js";
import { SpawnChild, WEXITSTATUS, WIFEXITED, WIFSIGNALED, WTERMSIG, spawnSetenv, waitpidNohang } from "../src/spawn.js";

function readAll(fd: number): string {
  const chunks: Buffer[] = [];
  const b = Buffer.alloc(65536);
  let n: number;
  while ((n = readSync(fd, b, 0, b.length, null)) > 0) {
    chunks.push(Buffer.from(b.subarray(0, n)));
  }
  closeSync(fd);
  return Buffer.concat(chunks).toString();
}

async function wait(pid: number): Promise<number> {
  for (let i = 0; i < 1000; i++) {
    const r = waitpidNohang(pid);
    if (r !== null) return r[1];
    await new Promise((res) => setTimeout(res, 5));
  }
  throw new Error("child did not exit");
}

function run(cmd: string, setup?: (c: SpawnChild) => void): { out: string; err: string; pid: number } {
  const r = spawn_command(
    (_d: null, child) => {
      setup?.(child);
      return run_shell_command(child, Buffer.from(cmd, "latin1"), "/bin/sh");
    },
    null,
    true,
  )!;
  closeSync(r.writefd);
  return { out: readAll(r.readfd), err: readAll(r.errfd), pid: r.pid };
}

describe("dbutil.c spawn_command / run_shell_command through posix_spawn", () => {
  it("gives the child pipes for stdin, stdout and stderr, and its exit status", async () => {
    const r = spawn_command((_d: null, child) => run_shell_command(child, Buffer.from("read x; echo got:$x; echo e >&2; exit 7"), "/bin/sh"), null, true)!;
    const { writeSync } = await import("node:fs");
    writeSync(r.writefd, "line\n");
    closeSync(r.writefd);
    expect(readAll(r.readfd)).toBe("got:line\n");
    expect(readAll(r.errfd)).toBe("e\n");
    const st = await wait(r.pid);
    expect(WIFEXITED(st)).toBe(true);
    expect(WEXITSTATUS(st)).toBe(7);
  });

  it("execs with exactly the environment given, no more fds than 0-2, default signals", async () => {
    // The shell execs ls so that ls lists the fds the shell had: a pipeline would be racy, as the
    // shell holds the pipe's ends until it has forked both sides. fd 3 is ls's own directory.
    const r = run("echo \"$0|$#|$(env | sort | tr '\\n' ' ')\"; grep SigIgn /proc/$$/status; exec ls /proc/self/fd", (c) => spawnSetenv(c, "ONLY", "this"));
    const [first, sigign, ...fds] = r.out.trim().split("\n");
    expect(first).toMatch(/^sh\|0\|ONLY=this (PWD=\S+ )?$/);
    expect(sigign).toMatch(/^SigIgn:\s+0+$/);
    expect(fds).toEqual(["0", "1", "2", "3"]);
    expect(WEXITSTATUS(await wait(r.pid))).toBe(0);
  });

  it("passes the command's bytes as they are, and a login shell gets -sh as argv[0]", async () => {
    const r = run("printf '%s' 'caf\xe9' | od -An -tx1");
    expect(r.out.trim()).toBe("63 61 66 e9");
    await wait(r.pid);
    const login = spawn_command((_d: null, child) => run_shell_command(child, null, "/bin/sh"), null, true)!;
    const { writeSync } = await import("node:fs");
    writeSync(login.writefd, 'echo "$0"\n');
    closeSync(login.writefd);
    expect(readAll(login.readfd)).toBe("-sh\n");
    readAll(login.errfd);
    await wait(login.pid);
  });

  it("a child's ignored signal (the pty's SIGTTOU) is ignored through its exec, and ours is as it was", async () => {
    const mine = (): string => /^SigIgn:\s*(\S+)$/m.exec(readFileSync("/proc/self/status", "latin1"))![1]!;
    const before = mine();
    const r = run("grep SigIgn /proc/$$/status", (c) => c.ignored.push("SIGTTOU"));
    expect(r.out).toMatch(/^SigIgn:\s+0000000000200000\n$/);
    await wait(r.pid);
    expect(mine()).toBe(before);
  });

  it("starts the child with the descriptor limit the program was started with, not the one Node raised", async () => {
    const ours = nofileSoftLimit();
    expect(ours).toBeGreaterThan(256);
    try {
      process.env[NOFILE_ENV] = "256";
      keepInheritedNofile();
      expect(process.env[NOFILE_ENV]).toBeUndefined();
      const r = run("ulimit -Sn");
      expect(r.out).toBe("256\n");
      await wait(r.pid);
      expect(nofileSoftLimit()).toBe(ours);
      // Started with a higher limit than ours now: nothing is raised, the child gets ours.
      process.env[NOFILE_ENV] = String(ours + 1);
      keepInheritedNofile();
      const same = run("ulimit -Sn");
      expect(same.out).toBe(`${ours}\n`);
      await wait(same.pid);
    } finally {
      delete process.env[NOFILE_ENV];
      keepInheritedNofile();
    }
  });

  it("reports a signal death", async () => {
    const r = run("kill -USR1 $$");
    const st = await wait(r.pid);
    expect(WIFSIGNALED(st)).toBe(true);
    expect(WTERMSIG(st)).toBe(10);
  });

  it("fails, with every pipe closed, when the program cannot be started", () => {
    const r = spawn_command((_d: null, child) => run_shell_command(child, Buffer.from("true"), "/no/such/shell"), null, true);
    expect(r).toBeNull();
  });
});
