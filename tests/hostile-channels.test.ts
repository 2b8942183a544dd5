import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Client, Server } from "dropbear-ts";
import { PYTHON, hasAsyncssh, itAsyncssh } from "./helpers/peers.js";
import { opensshKeygen, run, scratch } from "./helpers/servers.js";

// A hostile client against the library server, where every session shares one process (the
// daemon's connection processes keep theirs apart): what one connection does, and how it
// leaves, must end only that connection and leave nothing of it behind. asyncssh logs in,
// then raw packets misuse the connection protocol (tests/helpers/hostile-channels.py), while a
// well-behaved session of our library client runs in the same server throughout.

const SCRIPT = fileURLToPath(new URL("./helpers/hostile-channels.py", import.meta.url));
const work = scratch("dbts-hostchan-");
const hostKey = join(work.dir, "hostkey");
const lines: string[] = [];
const forwardsAsked: string[] = [];
let server: Server;
let port = 0;
let client: Client;

/** Open file descriptors of this process (the server's sockets, ptys and listeners among them). */
const fds = (): number => readdirSync("/proc/self/fd").length;

beforeAll(async () => {
  if (!hasAsyncssh) return;
  opensshKeygen(hostKey);
  const { createServer, connect } = await import("dropbear-ts");
  server = createServer({
    hostKeys: [hostKey],
    // Anyone, except a name starting "evil" (the forged-name case: refused, still logged).
    authenticate: ({ username }) => !username.startsWith("evil"),
    onSession: {
      // Echoes its stdin until EOF.
      exec: (session) => {
        session.stdin.on("data", (d: Buffer) => session.stdout.write(d));
        session.stdin.on("end", () => session.exit(0));
      },
    },
    // Approved only after the client that asked has gone.
    onTcpipForward: async (req) => {
      forwardsAsked.push(`${req.address}:${req.port}`);
      await new Promise((r) => setTimeout(r, 300));
      return true;
    },
    onStreamLocalForward: async (req) => {
      forwardsAsked.push(req.path);
      await new Promise((r) => setTimeout(r, 300));
      return true;
    },
    logger: (_level, message) => lines.push(message),
  });
  port = (await server.listen(0)).port;
  client = await connect({ host: "127.0.0.1", port, username: "good", hostKey: false, kex: ["curve25519-sha256"] });
}, 30_000);

afterAll(async () => {
  await client?.end();
  await server?.close();
  work.cleanup();
});

/** Run one hostile case: what it reported, and the server's log lines for its connection. */
async function hostile(name: string, ...args: string[]): Promise<{ res: { port: number; closed: boolean; [k: string]: unknown }; log: () => string }> {
  const r = await run(PYTHON, [SCRIPT, String(port), name, ...args], { timeoutMs: 30_000 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  expect(line, r.stderr).toBeDefined();
  const res = JSON.parse(line!) as { port: number; closed: boolean };
  return { res, log: () => lines.filter((l) => l.includes(`<127.0.0.1:${res.port}>`)).join("\n") };
}

describe("a hostile client in a library server's process", () => {
  itAsyncssh("a request for a channel never opened, 100 ptys left open, a forward approved after its client left: each ends only its connection and leaves nothing behind", async () => {
    // The well-behaved session: open across every case, answering after them all.
    const ch = client.exec("echo");
    const out: Buffer[] = [];
    ch.stdout.on("data", (d: Buffer) => out.push(d));
    ch.stdin.write("before\n");
    await expect.poll(() => Buffer.concat(out).toString(), { timeout: 10_000 }).toBe("before\n");
    await expect.poll(() => server.connections, { timeout: 5000 }).toBe(1);
    const base = fds();

    const unknown = await hostile("unknown-channel");
    expect(unknown.res.closed).toBe(true);
    await expect.poll(unknown.log, { timeout: 10_000 }).toMatch(/Exit \(hostile\) from <[^>]+>: Unknown channel 999/);

    // Each pty-req is accepted; no pty is made for it in this process (a handler gets pipes).
    const ptys = await hostile("ptys");
    expect(ptys.res["ptys"]).toBe(100);
    await expect.poll(ptys.log, { timeout: 10_000 }).toMatch(/Exit \(hostile\) from/);

    const fwd = await hostile("forward-then-leave");
    await expect.poll(fwd.log, { timeout: 10_000 }).toMatch(/Exit \(hostile\) from/);
    expect(forwardsAsked).toEqual(["127.0.0.1:0"]);
    // The approval comes 300 ms later, for a session already gone: no listener is opened.
    await new Promise((r) => setTimeout(r, 500));
    const sockPath = join(work.dir, "late.sock");
    const local = await hostile("streamlocal-forward-then-leave", sockPath);
    await expect.poll(local.log, { timeout: 10_000 }).toMatch(/Exit \(hostile\) from/);
    expect(forwardsAsked).toEqual(["127.0.0.1:0", sockPath]);
    await new Promise((r) => setTimeout(r, 500));
    expect(existsSync(sockPath)).toBe(false);

    expect(server.connections).toBe(1);
    await expect.poll(fds, { timeout: 5000 }).toBe(base);
    ch.stdin.end("after\n");
    expect(await ch.exit).toEqual({ code: 0 });
    expect(Buffer.concat(out).toString()).toBe("before\nafter\n");
    expect(lines.join("\n")).not.toMatch(/TypeError|RangeError|internal error|failed:/);
  }, 60_000);

  itAsyncssh("a user name with a newline and a terminal escape is logged with them in octal: a client cannot forge log lines", async () => {
    const from = lines.length;
    const r = await run(PYTHON, [SCRIPT, String(port), "forged-name"], { timeoutMs: 30_000 });
    expect(r.stdout, r.stderr).toMatch(/"closed": true/);
    const forged = "'evil\\012[info] Exit (root) from <10.0.0.1:22>: forged\\033[2J'";
    await expect.poll(() => lines.slice(from).filter((l) => l.startsWith("Exit before auth")).length, { timeout: 10_000 }).toBe(1);
    const mine = lines.slice(from);
    expect(mine.filter((l) => l.startsWith(`Bad password attempt for ${forged} from 127.0.0.1:`)), mine.join("\n")).toHaveLength(1);
    expect(mine.filter((l) => l.includes(`: (user ${forged}, 1 fails): `)), mine.join("\n")).toHaveLength(1);
    // No line of the connection holds a control character: none starts a line of its own.
    expect(lines.slice(from).filter((l) => /[\x00-\x1f\x7f]/.test(l))).toEqual([]);
  });
});
