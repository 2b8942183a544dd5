import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createConnection, createServer, type Server as NetServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { expectCommandStreams } from "./helpers/interop.js";
import { IS_ROOT, PEERS, itAsRoot } from "./helpers/peers.js";
import { OURS, exited, freePort, homeWithKnownHosts, opensshKeygen, publicKeyLine, run, runBytes, scratch, waitPort, type BytesResult } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Debian's tinysshd (20230101) as the server of our dbclient: a server implementation of its own,
// written from the RFCs with only modern algorithms (sntrup761x25519-sha512@openssh.com and
// curve25519-sha256, ssh-ed25519, chacha20-poly1305@openssh.com, nothing else), so it meets our
// client's defaults and nothing older. tinysshd serves one connection on its stdin and stdout,
// as inetd starts it; a listener here plays inetd.

const USER = "dbtstinyssh";
const work = scratch("dbts-tinyssh-");
const tools = ["tinysshd", "tinysshd-makekey", "tinysshd-printkey", "script"] as const;
let inetd: NetServer | null = null;
const served = new Set<ChildProcess>();
let port = 0;
let key = "";
let hostKeyLine = "";

/** A fresh HOME for dbclient whose known_hosts holds `lines`. */
const home = (name: string, lines: string[]): string => homeWithKnownHosts(work.dir, name, lines);

/** Our dbclient against tinysshd as USER with its defaults, the host key checked against `h`'s known_hosts. */
function dbclient(h: string, args: string[], input?: string | Buffer): Promise<BytesResult> {
  return runBytes(process.execPath, [OURS.dbclient, "-i", key, "-p", String(port), `${USER}@127.0.0.1`, ...args], { env: { HOME: h }, input });
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  const keydir = join(work.dir, "tinysshd-keys");
  const made = await run(PEERS["tinysshd-makekey"], [keydir]);
  if (made.status !== 0) throw new Error(`tinysshd-makekey: ${made.stderr}`);
  const printed = await run(PEERS["tinysshd-printkey"], [keydir]);
  hostKeyLine = printed.stdout.split("\n").find((l) => l.startsWith("ssh-ed25519 ")) ?? "";
  if (hostKeyLine === "") throw new Error(`tinysshd-printkey gave no ssh-ed25519 key: ${printed.stdout}`);
  const user = addTestUser(USER);
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key, { comment: "tinyssh-client" });
  authorizeKeys(user, `${key}.pub`);
  inetd = createServer({ pauseOnConnect: true }, (sock: Socket) => {
    const child = spawn(PEERS.tinysshd, [keydir], { stdio: [sock, sock, "ignore"] });
    served.add(child);
    child.on("exit", () => {
      served.delete(child);
      sock.destroy();
    });
  });
  inetd.listen(0, "127.0.0.1");
  await once(inetd, "listening");
  port = (inetd.address() as { port: number }).port;
}, 60_000);

afterAll(async () => {
  inetd?.close();
  for (const c of served) c.kill("SIGKILL");
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
});

describe("tinysshd", () => {
  itAsRoot([...tools], "dbclient's defaults, the host key verified from known_hosts: a command's streams and status, 3 MB through `cat` both ways, an empty stdin", async () => {
    const h = home("known", [`[127.0.0.1]:${port} ${hostKeyLine}`]);
    const r = await dbclient(h, ["true"]);
    expect(r.status, r.err).toBe(0);
    expect(r.err).not.toMatch(/Caution|skipping/);
    await expectCommandStreams((command, input) => dbclient(h, [command], input));
    const e = await dbclient(h, ["wc -c"]);
    expect(e.status, e.err).toBe(0);
    expect(e.out.toString().trim()).toBe("0");
  });

  itAsRoot([...tools], "each key exchange tinysshd has, chosen with -o KexAlgorithms: sntrup761x25519, curve25519 (both names)", async () => {
    const h = home("kex", [`[127.0.0.1]:${port} ${hostKeyLine}`]);
    for (const kex of ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256", "curve25519-sha256@libssh.org"]) {
      const r = await dbclient(h, ["-o", `KexAlgorithms=${kex}`, "echo ok"]);
      expect(r.status, `${kex}: ${r.err}`).toBe(0);
      expect(r.out.toString()).toBe("ok\n");
    }
  });

  itAsRoot([...tools], "-t on a terminal: the command runs on a pty with our TERM", async () => {
    const h = home("pty", [`[127.0.0.1]:${port} ${hostKeyLine}`]);
    const cmd = [process.execPath, OURS.dbclient, "-t", "-i", key, "-p", String(port), `${USER}@127.0.0.1`, "tty; echo TERM=$TERM"];
    // script(1) gives dbclient a terminal; its own output is the terminal's, with \r\n.
    const r = await run(PEERS.script, ["-qec", cmd.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" "), "/dev/null"], {
      env: { HOME: h, TERM: "xterm-256color" },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+\r?\n/);
    expect(r.stdout).toContain("TERM=xterm-256color");
  });

  itAsRoot([...tools], "-L, which tinysshd does not serve: the forwarded connection is closed, and the session goes on", async () => {
    const h = home("fwd", [`[127.0.0.1]:${port} ${hostKeyLine}`]);
    const lport = await freePort();
    const child = spawn(process.execPath, [OURS.dbclient, "-i", key, "-p", String(port), "-L", `127.0.0.1:${lport}:127.0.0.1:9`, `${USER}@127.0.0.1`, "sleep 2; echo done"], {
      env: { ...process.env, HOME: h },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    await waitPort(lport, child, () => err);
    const sock = createConnection(lport, "127.0.0.1");
    sock.on("error", () => undefined);
    await once(sock, "close");
    expect(await exited(child)).toBe(0);
    expect(out).toBe("done\n");
  });

  itAsRoot([...tools], "a different key in known_hosts for the host: refused before authentication, saying so", async () => {
    const other = opensshKeygen(join(work.dir, "other_hk"));
    const h = home("mismatch", [`[127.0.0.1]:${port} ${publicKeyLine(`${other}.pub`)}`]);
    const r = await dbclient(h, ["echo should-not-run"]);
    expect(r.status).not.toBe(0);
    expect(r.out.toString()).toBe("");
    expect(r.err).toMatch(/host key mismatch/i);
  });
});
