import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import { itAsRoot } from "./helpers/peers.js";
import { childrenOf } from "./helpers/procs.js";
import { exited, freePort, opensshKeygen, OURS, ourKeygen, scratch, terminate, waitPort } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Signals a parent left ignored stay ignored, as in Dropbear's programs (they set handlers only
// for what they use): `nohup dbclient host cmd`, a background job of a script, a daemon started
// with SIGHUP ignored. Node resets them before any JavaScript, so the bins themselves, run as
// commands (sh first), are what is tested here, never `node <bin>`.

const USER = "dbtssigign";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-sigign-");
let key = "";
const children: ChildProcess[] = [];

beforeAll(() => {
  if (!isRoot) return;
  const { home, uid, gid } = addTestUser(USER);
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key, { comment: "sigign" });
  authorizeKeys({ home, uid, gid }, `${key}.pub`);
}, 60_000);

afterAll(async () => {
  await Promise.all(children.map((c) => terminate(c)));
  if (isRoot) removeTestUser(USER);
  work.cleanup();
});

/** A bin run as a command by `sh -c "trap '' <ignored>; exec bin args"`, with this Node first on PATH. */
function underTrap(ignored: string, bin: string, args: string[]): ChildProcess {
  const child = spawn("sh", ["-c", `${ignored ? `trap '' ${ignored}; ` : ""}exec "$0" "$@"`, bin, ...args], {
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  return child;
}

/** The low signals of a /proc status text's SigIgn line: bit 0 SIGHUP, 1 SIGINT, 2 SIGQUIT (14 SIGTERM). */
function sigIgnOf(status: string): number {
  const m = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status);
  return Number(BigInt(`0x${m![1]}`) & 0xffffn);
}

/** sigIgnOf of a running process. */
function sigIgn(pid: number): number {
  return sigIgnOf(readFileSync(`/proc/${pid}/status`, "utf8"));
}

const HUP = 1;
const INT = 2;
const QUIT = 4;
const TERM = 1 << 14;

/** Resolves when `child` has printed `text` on stdout; its output so far is in `out()`. */
function collect(child: ChildProcess): { out: () => string; err: () => string; saw: (text: string) => Promise<void> } {
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return {
    out: () => out,
    err: () => err,
    saw: async (text) => {
      for (const end = Date.now() + 20_000; !out.includes(text); ) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`no "${text}" in: ${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

itAsRoot(
  [],
  "dropbear and dbclient keep what their parent ignored, for themselves and for the commands they run; other signals still act",
  async () => {
    const port = await freePort();
    const hostKey = ourKeygen(join(work.dir, "hk"));
    const daemon = underTrap("HUP QUIT", OURS.dropbear, ["-F", "-E", "-r", hostKey, "-p", `127.0.0.1:${port}`]);
    let log = "";
    daemon.stderr!.on("data", (d: Buffer) => (log += d.toString()));
    await waitPort(port, daemon, () => log);
    // The daemon itself: HUP and QUIT ignored; INT and TERM have its handlers (C's sigintterm_handler).
    expect(sigIgn(daemon.pid!) & (HUP | INT | QUIT | TERM)).toBe(HUP | QUIT);
    daemon.kill("SIGHUP");
    daemon.kill("SIGQUIT");

    const client = underTrap("HUP INT", OURS.dbclient, ["-y", "-y", "-i", key, "-p", String(port), `${USER}@127.0.0.1`, "grep SigIgn /proc/self/status; echo started; sleep 2; echo done"]);
    const c = collect(client);
    await c.saw("started");
    // The command, run by the daemon's connection process: HUP and QUIT still ignored, as C's
    // forked children keep them through exec.
    expect(sigIgnOf(c.out()) & (HUP | INT | QUIT | TERM)).toBe(HUP | QUIT);
    expect(sigIgn(client.pid!) & (HUP | INT | QUIT | TERM)).toBe(HUP | INT);
    client.kill("SIGHUP");
    client.kill("SIGINT");
    expect(await exited(client)).toBe(0);
    expect(c.out()).toContain("done");
    expect(daemon.exitCode).toBeNull();

    // Multihop: the inner dbclient keeps them too (C forks it before setting the proxy's
    // handlers); the outer one has kill_proxy_sighandler's on HUP and INT instead.
    const hop = `${USER}@127.0.0.1/${port}`;
    const outer = underTrap("HUP INT", OURS.dbclient, ["-y", "-y", "-i", key, `${hop},${hop}`, "echo started; sleep 10"]);
    const o = collect(outer);
    await o.saw("started");
    const [inner] = childrenOf(outer.pid!);
    expect(sigIgn(inner!) & (HUP | INT | QUIT | TERM)).toBe(HUP | INT);
    expect(sigIgn(outer.pid!) & (HUP | INT | QUIT | TERM)).toBe(0);
    outer.kill("SIGHUP");
    expect(await exited(outer)).toBe(1);

    // Not left ignored: SIGHUP ends dbclient as it ends C's; SIGTERM ends the daemon.
    const plain = underTrap("", OURS.dbclient, ["-y", "-y", "-i", key, "-p", String(port), `${USER}@127.0.0.1`, "echo started; sleep 10"]);
    const p = collect(plain);
    await p.saw("started");
    expect(sigIgn(plain.pid!) & (HUP | INT | QUIT | TERM)).toBe(0);
    plain.kill("SIGHUP");
    const [, signal] = (await once(plain, "exit")) as [number | null, NodeJS.Signals | null];
    expect(signal).toBe("SIGHUP");
    daemon.kill("SIGTERM");
    await once(daemon, "exit");
    expect(log).toContain("Terminated by signal");
  },
  60_000,
);
