import { execFileSync, spawn, type StdioOptions } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { exited, freePort, opensshKeygen, OURS, ourKeygen, scratch, startOurDropbear, startSshd, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";
import { payload, startEchoTarget } from "./helpers/tunnel.js";

// Issue 9: every way the client reaches a server. -B (a netcat channel on stdio), OpenSSH's
// ssh -W through our server, -J through the shell or an inherited fd, -o ProxyCommand, and
// multihop (dbclient re-run with -B per hop); a proxy that cannot start never becomes a direct
// connection.

const USER = "dbtsproxy";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-proxy-");
const keys = { dropbear: "", openssh: "", host: "" };
const cleanups: (() => Promise<void>)[] = [];
let ours: Server;
/** A tiny stdio <-> TCP relay (socat is not installed): node relay.mjs HOST PORT. */
let relay = "";

const itProxy = itAsRoot;

const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  if (!isRoot) return;
  const user = addTestUser(USER);
  keys.dropbear = join(work.dir, "id_dropbear");
  ourKeygen(keys.dropbear);
  keys.openssh = join(work.dir, "id_openssh");
  opensshKeygen(keys.openssh, { comment: "proxy" });
  keys.host = join(work.dir, "host_ed25519");
  ourKeygen(keys.host);
  authorizeKeys(user, `${keys.dropbear}.pub`, `${keys.openssh}.pub`);

  relay = join(work.dir, "relay.mjs");
  writeFileSync(
    relay,
    [
      'import net from "node:net";',
      "const s = net.connect({ host: process.argv[2], port: Number(process.argv[3]), allowHalfOpen: true });",
      "process.stdin.pipe(s);",
      "s.pipe(process.stdout);",
      "s.on('error', (e) => { process.stderr.write('relay: ' + e.message + '\\n'); process.exit(1); });",
    ].join("\n") + "\n",
  );

  ours = await startOurDropbear(["-r", keys.host]);
  cleanups.push(() => ours.stop());
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
}, 60_000);

interface BinResult {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Run a program with `input` on stdin (binary both ways), bounded. */
async function runBin(
  cmd: string,
  args: string[],
  input: Buffer,
  opts: { timeoutMs?: number; stdio?: StdioOptions; detached?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<BinResult> {
  // detached: a session of its own, so no controlling terminal even when vitest has one.
  const child = spawn(cmd, args, { stdio: opts.stdio ?? ["pipe", "pipe", "pipe"], detached: opts.detached, env: opts.env });
  const out: Buffer[] = [];
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => out.push(d));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on("error", () => undefined);
  child.stdin!.end(input);
  const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
  const status = await exited(child);
  clearTimeout(timer);
  return { status, stdout: Buffer.concat(out), stderr };
}

/** Our dbclient's usual arguments: key, no host key prompt, the user. */
function ourArgs(port: number, ...rest: string[]): string[] {
  return [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, "-p", String(port), ...rest];
}

/** A listener that only counts connections: the target a failed proxy must never reach. */
async function countingListener(): Promise<{ port: number; count: () => Promise<number>; close: () => Promise<void> }> {
  let n = 0;
  let probes = 0;
  const seen = new Set<number>();
  const waiting = new Map<number, () => void>();
  const srv = net.createServer((s) => {
    n++;
    const from = s.remotePort ?? -1;
    seen.add(from);
    s.destroy();
    waiting.get(from)?.();
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    // Connections are accepted in the order they arrived: once a probe of our own is in, any
    // connection made before it has been counted.
    count: async () => {
      const probe = net.connect(port, "127.0.0.1");
      probe.on("error", () => undefined);
      await once(probe, "connect");
      const me = probe.localPort!;
      await new Promise<void>((r) => (seen.has(me) ? r() : waiting.set(me, r)));
      probe.destroy();
      probes++;
      return n - probes;
    },
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

describe("-B and ssh -W: a direct-tcpip channel on stdio", () => {
  itProxy([], "dbclient -B through our server carries 1 MB each way intact", async () => {
    const echo = await startEchoTarget();
    try {
      const data = payload(1 << 20);
      const r = await runBin(process.execPath, ourArgs(ours.port, "-B", `127.0.0.1:${echo.port}`, `${USER}@127.0.0.1`), data);
      expect(r.stderr).not.toMatch(/exited|error/i);
      expect(r.status).toBe(0);
      expect(r.stdout.length).toBe(data.length);
      expect(sha(r.stdout)).toBe(sha(data));
      expect(echo.received).toEqual([sha(data)]);
    } finally {
      await echo.close();
    }
  });

  itProxy(["ssh"], "OpenSSH ssh -W through our server carries 1 MB each way intact", async () => {
    const echo = await startEchoTarget();
    try {
      const data = payload(1 << 20);
      const args = [
        "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-i", keys.openssh, "-p", String(ours.port), "-W", `127.0.0.1:${echo.port}`, `${USER}@127.0.0.1`,
      ];
      const r = await runBin(PEERS.ssh, args, data);
      expect(r.status).toBe(0);
      expect(sha(r.stdout)).toBe(sha(data));
      expect(echo.received).toEqual([sha(data)]);
    } finally {
      await echo.close();
    }
  });

  itProxy([], "-B: the target's close reaches stdout's reader while stdin is still open, as C's close(1) does", async () => {
    const target = net.createServer((s) => s.end("hello\n"));
    target.listen(0, "127.0.0.1");
    await once(target, "listening");
    const tport = (target.address() as net.AddressInfo).port;
    const child = spawn(process.execPath, ourArgs(ours.port, "-B", `127.0.0.1:${tport}`, `${USER}@127.0.0.1`), { stdio: ["pipe", "pipe", "ignore"] });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    try {
      const out: Buffer[] = [];
      child.stdout!.on("data", (d: Buffer) => out.push(d));
      // stdin stays open: only dbclient letting go of its stdout ends the read.
      await once(child.stdout!, "end");
      expect(Buffer.concat(out).toString()).toBe("hello\n");
      expect(child.exitCode).toBeNull();
      child.stdin!.end();
      expect(await exited(child)).toBe(0);
    } finally {
      clearTimeout(timer);
      child.kill("SIGKILL");
      await new Promise<void>((res) => target.close(() => res()));
    }
  });

  itProxy([], "-B to a port nobody listens on: the open fails, no channel is left, dbclient says why and exits 1", async () => {
    const dead = await countingListener();
    await dead.close();
    const r = await runBin(process.execPath, ourArgs(ours.port, "-B", `127.0.0.1:${dead.port}`, `${USER}@127.0.0.1`), Buffer.alloc(0), { timeoutMs: 30_000 });
    // Dropbear 2026.94 ends with status 0 and not a word, as if the stream had been carried
    // (docs/deviations.md); OpenSSH's ssh -W says "stdio forwarding failed" and exits 255.
    expect(r.stderr.toString()).toContain("Channel open failed (direct-tcpip): connect failed: Connection refused");
    expect(r.status).toBe(1);
    expect(r.stdout.length).toBe(0);
  });
});

describe("-J and ProxyCommand: the transport through a program", () => {
  itProxy([], "-J through the user's shell runs a command and returns its exit code", async () => {
    const r = await runBin(process.execPath, ourArgs(22, "-J", `${process.execPath} ${relay} 127.0.0.1 ${ours.port}`, `${USER}@proxied.invalid`, "echo via-proxy; exit 7"), Buffer.alloc(0));
    expect(r.stdout.toString()).toBe("via-proxy\n");
    expect(r.status).toBe(7);
  });

  itProxy([], "-J with bytes that are not UTF-8 runs them as given (C's execv), through the user's shell", async () => {
    // The relay's extra argument "caf\351" (Latin-1) is written to a file by a wrapper; Node
    // cannot pass 0xe9 alone as an argument, so sh's printf makes the -J value.
    const seen = join(work.dir, "j-arg");
    const proxy = `sh -c 'printf %s "$1" > ${seen}; exec "$0" "$2" 127.0.0.1 ${ours.port}' ${process.execPath} caf\\351 ${relay}`;
    const script = 'J="$(printf "$1")"; H="$2"; C="$3"; shift 3; exec "$@" -J "$J" "$H" "$C"';
    const r = await runBin("/bin/sh", ["-c", script, "sh", proxy.replaceAll("%", "%%"), `${USER}@proxied.invalid`, "echo via-latin1-proxy", process.execPath, ...ourArgs(22)], Buffer.alloc(0));
    expect(r.stdout.toString(), r.stderr).toBe("via-latin1-proxy\n");
    expect(readFileSync(seen)).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
  });

  itProxy([], "-o ProxyCommand=... works the same", async () => {
    const r = await runBin(process.execPath, ourArgs(22, "-o", `ProxyCommand=${process.execPath} ${relay} 127.0.0.1 ${ours.port}`, `${USER}@proxied.invalid`, "echo pc; exit 3"), Buffer.alloc(0));
    expect(r.stdout.toString()).toBe("pc\n");
    expect(r.status).toBe(3);
  });

  itProxy([], "-J '&3' uses an inherited connected socket", async () => {
    const sock = net.connect(ours.port, "127.0.0.1");
    await once(sock, "connect");
    try {
      const r = await runBin(process.execPath, ourArgs(22, "-J", "&3", `${USER}@fd.invalid`, "echo over-fd; exit 5"), Buffer.alloc(0), {
        stdio: ["pipe", "pipe", "pipe", sock],
      });
      expect(r.stdout.toString()).toBe("over-fd\n");
      expect(r.status).toBe(5);
    } finally {
      sock.destroy();
    }
  });

  itProxy([], "-J '&3' reaches a -f background copy and a multihop's inner dbclient, which get the fd as after C's fork", async () => {
    // Node's spawn passes a child only the fds its stdio names: the -f copy found its report
    // pipe at fd 3 and took that as the transport (the foreground exited 0, no command ran);
    // the inner dbclient of a multihop found no socket there ("Bad proxy fd 3").
    const viaFd = async (args: string[]): Promise<{ status: number | null; out: string }> => {
      const sock = net.connect(ours.port, "127.0.0.1");
      await once(sock, "connect");
      try {
        const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe", sock] });
        const stdout = child.stdout;
        if (stdout === null) throw new Error("no stdout pipe");
        let out = "";
        stdout.on("data", (d: Buffer) => (out += d.toString()));
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        const status = await exited(child);
        // A -f copy writes after the foreground has gone: its output ends when the pipe closes.
        const end = Date.now() + 20_000;
        while (!stdout.readableEnded && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
        clearTimeout(timer);
        return { status, out };
      } finally {
        sock.destroy();
      }
    };
    const bg = await viaFd(ourArgs(22, "-f", "-J", "&3", `${USER}@fd.invalid`, "echo bg-over-fd"));
    expect(bg).toEqual({ status: 0, out: "bg-over-fd\n" });
    const hops = `${USER}@127.0.0.1/${ours.port},${USER}@127.0.0.1/${ours.port}`;
    const multi = await viaFd(ourArgs(22, "-J", "&3", hops, "echo multihop-over-fd; exit 6"));
    expect(multi).toEqual({ status: 6, out: "multihop-over-fd\n" });
  });

  itProxy([], "-J '&N' naming a descriptor we were not given (one of Node's own) is refused, never an abort", async () => {
    // Node's event loop holds fds from 3 up (epoll, eventfds, wake-up pipes) before we connect:
    // taken as the transport, &5 died of SIGABRT, &15 ended with a stack trace, others with
    // a read error. None is a socket, the only kind of descriptor that can carry a session.
    const numbers = Array.from({ length: 15 }, (_, k) => k + 3);
    const runs = await Promise.all(numbers.map((n) => runBin(process.execPath, ourArgs(22, "-J", `&${n}`, `${USER}@fd.invalid`, "true"), Buffer.alloc(0), { timeoutMs: 30_000 })));
    runs.forEach((r, k) => {
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`Exited: Bad proxy fd ${numbers[k]}: (not a socket|EBADF)\n$`));
    });
  });

  itProxy([], "a -J program that answers on its stdin (inetd-style) ends dbclient at once, never a hang", async () => {
    // `dropbear -i` writes its version line to fd 0. To C that fd is a pipe's read end, and the
    // write fails; ours is a socket pair, whose reading side is shut down for the same.
    const proxy = `sh -c "printf 'SSH-2.0-inetd_style\\\\r\\\\n' >&0 && sleep 30"`;
    const t0 = Date.now();
    // (Killed after 20 s: a hang shows as a null status.)
    const r = await runBin(process.execPath, ourArgs(22, "-J", proxy, `${USER}@127.0.0.1`, "true"), Buffer.alloc(0), { timeoutMs: 20_000 });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/Remote closed the connection/);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  itProxy([], "a -J program that does not exist ends dbclient; the target port sees no connection", async () => {
    const target = await countingListener();
    try {
      const r = await runBin(process.execPath, ourArgs(target.port, "-J", "/nonexistent/proxy-program --x", `${USER}@127.0.0.1`, "true"), Buffer.alloc(0), { timeoutMs: 30_000 });
      expect(r.status).not.toBe(0);
      // The shell says why; dbclient says the transport went away before a version line.
      expect(r.stderr).toMatch(/nonexistent\/proxy-program/);
      expect(r.stderr).toMatch(/Remote closed the connection/);
      expect(await target.count()).toBe(0);
    } finally {
      await target.close();
    }
  });

  itProxy([], "a proxy that dies mid-session ends dbclient with an error, never a direct connection", async () => {
    const target = await countingListener();
    try {
      // The relay is killed (its process group) once the remote command has printed.
      const cmd = `${process.execPath} ${relay} 127.0.0.1 ${ours.port}`;
      const child = spawn(process.execPath, ourArgs(target.port, "-J", cmd, `${USER}@127.0.0.1`, "echo up; sleep 30"), { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const up = new Promise<void>((res) => child.stdout.on("data", (d: Buffer) => ((out += d.toString()), out.includes("up") && res())));
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await up;
      // The relay is dbclient's only child.
      const kids = execFileSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).trim().split("\n").map(Number);
      expect(kids.length).toBe(1);
      process.kill(kids[0]!, "SIGKILL");
      const [status] = (await once(child, "exit")) as [number | null];
      clearTimeout(timer);
      expect(status).not.toBe(0);
      expect(err).toMatch(/Remote closed the connection|Error/);
      expect(await target.count()).toBe(0);
    } finally {
      await target.close();
    }
  });
});

describe("multihop: dbclient re-run with -B per hop", () => {
  itProxy(["sshd"], "u@ours/port,u@sshd/port runs a command on the last hop and returns its exit code", async () => {
    const d = scratch("dbts-proxy-sshd-");
    cleanups.push(async () => d.cleanup());
    const sshd = await startSshd(d.dir);
    cleanups.push(() => sshd.stop());
    const target = await countingListener();
    try {
      const r = await runBin(
        process.execPath,
        [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, `${USER}@127.0.0.1/${ours.port},${USER}@127.0.0.1/${sshd.port}`, "echo hop2 $SSH_CONNECTION; exit 9"],
        Buffer.alloc(0),
      );
      expect(r.stderr).not.toMatch(/exited:/);
      // The last hop saw the connection come from the first hop's direct-tcpip (127.0.0.1).
      expect(r.stdout.toString()).toMatch(new RegExp(`^hop2 127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${sshd.port}\\n$`));
      expect(r.status).toBe(9);
    } finally {
      await target.close();
    }
  });

  itProxy([], "three hops through our server, then -B on the end", async () => {
    const echo = await startEchoTarget();
    try {
      const data = payload(200_000);
      const hop = `${USER}@127.0.0.1/${ours.port}`;
      const r = await runBin(process.execPath, [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, "-B", `127.0.0.1:${echo.port}`, `${hop},${hop},${hop}`], data);
      expect(r.status).toBe(0);
      expect(sha(r.stdout)).toBe(sha(data));
    } finally {
      await echo.close();
    }
  });

  itProxy([], "a hop and a -B end given as IPv6 addresses ([addr]:port for -B)", async () => {
    // Each hop reaches the next with -B host:port, which Dropbear splits at the colon: a chain
    // (or a ProxyJump) with an IPv6 hop ended "Bad netcat endpoint '::1:<port>'".
    const port6 = await freePort();
    const v6 = await startOurDropbear(["-r", keys.host, "-p", `[::1]:${port6}`]);
    const echo = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
    echo.listen(0, "::1");
    await once(echo, "listening");
    try {
      const hop = `${USER}@127.0.0.1/${ours.port}`;
      const r = await runBin(process.execPath, [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, `${hop},${USER}@::1/${port6}`, "echo $SSH_CONNECTION"], Buffer.alloc(0));
      expect(r.stderr).not.toMatch(/Bad netcat endpoint|exited:/);
      expect(r.stdout.toString()).toMatch(new RegExp(`^::1 \\d+ ::1 ${port6}\\n$`));
      expect(r.status).toBe(0);

      const data = payload(100_000);
      const echoPort = (echo.address() as net.AddressInfo).port;
      const b = await runBin(process.execPath, ourArgs(ours.port, "-B", `[::1]:${echoPort}`, `${USER}@127.0.0.1`), data);
      expect(b.stderr).not.toMatch(/Bad netcat endpoint|exited:/);
      expect(sha(b.stdout)).toBe(sha(data));
      expect(b.status).toBe(0);
    } finally {
      await new Promise<void>((res) => echo.close(() => res()));
      await v6.stop();
    }
  });

  itProxy([], "a last hop that ends the connection before auth ends the chain (its -B hop lets go of stdout)", async () => {
    // The last hop asks for passwords on our (empty) stdin and is refused them until it ends the
    // connection; the hop before it then closes its stdout, and the chain must end with why.
    const env = { ...process.env };
    delete env.DROPBEAR_PASSWORD;
    const r = await runBin(process.execPath, [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, `${USER}@127.0.0.1/${ours.port},dbts-nosuchuser@127.0.0.1/${ours.port}`, "true"], Buffer.alloc(0), {
      timeoutMs: 40_000,
      detached: true,
      env,
    });
    expect(r.stderr).toMatch(/Remote closed the connection/);
    expect(r.status).toBe(1);
  });

  itProxy([], "a hop that asks for a password with no terminal ends the chain instead of reading stdin", async () => {
    // Nobody by this name: the key is refused and password auth is next. A hop's stdin is the
    // SSH stream, so getpass(3)'s fallback to stdin would wait there forever.
    const env = { ...process.env };
    delete env.DROPBEAR_PASSWORD;
    const hop = `dbts-nosuchuser@127.0.0.1/${ours.port}`;
    const r = await runBin(process.execPath, [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, `${hop},${USER}@127.0.0.1/${ours.port}`, "true"], Buffer.alloc(0), {
      timeoutMs: 20_000,
      detached: true,
      env,
    });
    expect(r.stderr).toMatch(/No terminal to ask on: stdin carries the -B stream/);
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
  });

  itProxy([], "a hop that cannot be reached ends the whole chain with an error", async () => {
    const dead = await countingListener();
    await dead.close();
    const target = await countingListener();
    try {
      const r = await runBin(process.execPath, [OURS.dbclient, "-y", "-y", "-i", keys.dropbear, `${USER}@127.0.0.1/${dead.port},${USER}@127.0.0.1/${target.port}`, "true"], Buffer.alloc(0), { timeoutMs: 30_000 });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/Connection refused|Remote closed/);
      expect(await target.count()).toBe(0);
    } finally {
      await target.close();
    }
  });
});
