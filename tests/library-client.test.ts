import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, connect, type ConnectOptions, type ForwardOptions, type SshError } from "dropbear-ts";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { opensshKeygen, freePort, run, scratch, startOurDropbearWithHostKey, startSshAgent, startSshd, type Server } from "./helpers/servers.js";
import { payload, startEchoTarget, type Target } from "./helpers/tunnel.js";
import { addTestUser, removeTestUser } from "./helpers/users.js";
import { silentServer } from "./helpers/sockets.js";

// Issue 13, client half: the library's client (the `dropbear-ts` package, imported by name as a
// user would) against OpenSSH's sshd over loopback, through the examples run as real processes
// and through the API in this process: exec with both streams and the exit status, the seed's
// -L from code with 20 concurrent 8 MiB connections, direct-tcpip, -R, refused host keys and
// keys, and many clients closed with no handle left open. Needs root (a throw-away account).

const USER = "dbtslibcli";
const PASSWORD = "lib-cli-pw-7";
const PASSPHRASE = "lib-cli-phrase";
const root = fileURLToPath(new URL("..", import.meta.url));
const work = scratch("dbts-libcli-");
/** HOME for the examples: its ~/.ssh/known_hosts lists the sshd's host keys. */
const home = join(work.dir, "home");
let key = "";
let otherKey = "";
/** Dropbear's own key format, an encrypted OpenSSH key, and a key only an ssh-agent holds. */
let dropbearKey = "";
let encKey = "";
let agentSock = "";
let agent: ChildProcess | null = null;
let knownHosts = "";
let sshd: Server | null = null;
let echo: Target | null = null;
const children: ChildProcess[] = [];

const sh = (cmd: string, args: string[]) => run(cmd, args, { timeoutMs: 30_000 });

beforeAll(async () => {
  if (process.getuid?.() !== 0) return;
  const user = addTestUser(USER, { password: PASSWORD });
  key = join(work.dir, "id_ed25519");
  otherKey = join(work.dir, "other_ed25519");
  encKey = join(work.dir, "enc_ecdsa");
  dropbearKey = join(work.dir, "id_dropbear");
  const agentKey = join(work.dir, "agent_ed25519");
  opensshKeygen(key);
  opensshKeygen(otherKey);
  opensshKeygen(encKey, { type: "ecdsa", passphrase: PASSPHRASE });
  opensshKeygen(agentKey);
  const db = await sh(PEERS.dropbearkey, ["-t", "rsa", "-s", "2048", "-f", dropbearKey]);
  const dropbearPub = db.stdout.split("\n").find((l) => l.startsWith("ssh-rsa "))!;
  agentSock = join(work.dir, "agent.sock");
  agent = await startSshAgent(agentSock);
  children.push(agent);
  const added = await run(PEERS["ssh-add"], [agentKey], { env: { SSH_AUTH_SOCK: agentSock } });
  if (added.status !== 0) throw new Error(`ssh-add: ${added.stderr}`);
  const ak = join(user.home, ".ssh", "authorized_keys");
  writeFileSync(ak, [key, encKey, agentKey].map((k) => readFileSync(`${k}.pub`, "utf8")).join("") + `${dropbearPub}\n`);
  chownSync(ak, user.uid, user.gid);
  chmodSync(ak, 0o600);
  const d = join(work.dir, "sshd");
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, "banner"), "lib-cli-banner\n");
  sshd = await startSshd(d, ["PasswordAuthentication yes", `Banner ${join(d, "banner")}`, `Subsystem sftp ${PEERS["sftp-server"]}`, "AcceptEnv LC_DBTS"]);
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  knownHosts = join(home, ".ssh", "known_hosts");
  const lines = readdirSync(d)
    .filter((f) => f.endsWith("_key.pub"))
    .map((f) => {
      const [type, b64] = readFileSync(join(d, f), "utf8").trim().split(/\s+/);
      return `127.0.0.1 ${type} ${b64}\n`;
    });
  writeFileSync(knownHosts, lines.join(""));
  echo = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await echo?.close();
  await sshd?.stop();
  if (process.getuid?.() === 0) removeTestUser(USER);
  work.cleanup();
});

const opts = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: "127.0.0.1",
  port: sshd!.port,
  username: USER,
  privateKeyPath: key,
  hostKey: { knownHostsPath: knownHosts },
  ...extra,
});

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/** Send `data` to 127.0.0.1:port, half-close, and read the echo until the far end closes. */
function echoThrough(port: number, data: Buffer): Promise<{ sent: string; got: string; len: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const h = createHash("sha256");
    let len = 0;
    s.on("data", (d: Buffer) => {
      h.update(d);
      len += d.length;
    });
    s.on("end", () => {
      s.end();
      resolve({ sent: sha(data), got: h.digest("hex"), len });
    });
    s.on("error", reject);
    s.end(data);
  });
}

/** The process's open handles (sockets, pipes, servers, children) counted by type; timers left out (vitest's own come and go). */
function handles(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (r !== "Timeout") m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

describe("examples against OpenSSH sshd", () => {
  itAsRoot(["sshd", "ssh-keygen"], "exec.mjs prints the remote stdout and stderr and exits with the remote status", async () => {
    const r = await run(process.execPath, [join(root, "examples/exec.mjs"), `${USER}@127.0.0.1:${sshd!.port}`, key, "echo out; echo err >&2; exit 7"], {
      env: { HOME: home },
    });
    // Only the command's: the server's banner and the like are log lines, and exec.mjs logs nothing.
    expect(r.stderr).toBe("err\n");
    expect(r.stdout).toBe("out\n");
    expect(r.status).toBe(7);
  });

  itAsRoot(["sshd", "ssh-keygen"], "exec.mjs exits 128 + the signal's number, and 255 for a signal sshd cannot name", async () => {
    const target = `${USER}@127.0.0.1:${sshd!.port}`;
    const term = await run(process.execPath, [join(root, "examples/exec.mjs"), target, key, "kill -TERM $$"], { env: { HOME: home } });
    expect(term.status).toBe(128 + 15);
    // sshd reports SIGSYS as "SIG@openssh.com", which no table numbers.
    const sys = await run(process.execPath, [join(root, "examples/exec.mjs"), target, key, "kill -SYS $$"], { env: { HOME: home } });
    expect(sys.stderr).toBe("exec.mjs: killed by signal SIG@openssh.com\n");
    expect(sys.status).toBe(255);
  });

  itAsRoot(
    ["sshd", "ssh-keygen"],
    "forward.mjs carries 8 MiB each way in 20 concurrent connections, every byte checked",
    async () => {
      const lport = await freePort();
      const child = spawn(
        process.execPath,
        [join(root, "examples/forward.mjs"), `${USER}@127.0.0.1:${sshd!.port}`, key, String(lport), `127.0.0.1:${echo!.port}`],
        { env: { ...process.env, HOME: home }, stdio: ["ignore", "pipe", "pipe"] },
      );
      children.push(child);
      let out = "";
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("\n")) resolve();
        });
        child.on("exit", () => reject(new Error(`forward.mjs exited: ${err}`)));
      });
      expect(out).toBe(`listening on 127.0.0.1:${lport}\n`);
      const N = 8 * 1024 * 1024;
      // A different slice of the random pool for each connection: a mix-up cannot go unseen.
      const pool = payload(N + 20 * 4099);
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => echoThrough(lport, pool.subarray(i * 4099, i * 4099 + N))));
      expect(new Set(results.map((r) => r.sent)).size).toBe(20);
      for (const r of results) {
        expect(r.len).toBe(N);
        expect(r.got).toBe(r.sent);
      }
      const gone = once(child, "exit");
      child.kill("SIGTERM");
      const [code] = await gone;
      expect(code).toBe(0);
      expect(err).toBe("");
    },
    180_000,
  );
});

describe("the client API in this process", () => {
  itAsRoot(["sshd", "ssh-keygen"], "exec: both streams, stdin, the exit status or signal; the banner reaches the logger", async () => {
    const logged: string[] = [];
    const client = await connect(opts({ logger: (level, msg) => logged.push(`${level}: ${msg}`) }));
    expect(logged).toContain("info: lib-cli-banner");
    const cmd = client.exec("cat; echo to-err >&2; exit 3");
    const out = collect(cmd.stdout);
    const errs = collect(cmd.stderr);
    cmd.stdin.end("from stdin\n");
    expect(await cmd.exit).toEqual({ code: 3 });
    expect((await out).toString()).toBe("from stdin\n");
    expect((await errs).toString()).toBe("to-err\n");
    const killed = client.exec("kill -TERM $$");
    killed.stdin.end();
    expect(await killed.exit).toEqual({ signal: "TERM", coreDumped: false });
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "a host key the callback refuses, or one missing from known_hosts, ends the connection with an error", async () => {
    const seen: string[] = [];
    await expect(
      connect(
        opts({
          hostKey: async (k, fp) => {
            seen.push(`${k.algorithm} ${fp}`);
            return false;
          },
        }),
      ),
    ).rejects.toMatchObject({ message: "Host key not accepted", code: "EHOSTKEY" });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/^ssh-ed25519 SHA256:/);
    const empty = join(work.dir, "empty_known_hosts");
    writeFileSync(empty, "");
    await expect(connect(opts({ hostKey: { knownHostsPath: empty } }))).rejects.toMatchObject({ message: "Not accepted automatically", code: "EHOSTKEY" });
    // Nothing was added to the file: a library never trusts on first use.
    expect(readFileSync(empty, "utf8")).toBe("");
    // A different key listed: the message names the file the caller gave.
    const other = join(work.dir, "other_known_hosts");
    writeFileSync(other, `127.0.0.1 ${readFileSync(`${otherKey}.pub`, "utf8").split(" ").slice(0, 2).join(" ")}\n`);
    await expect(connect(opts({ hostKey: { knownHostsPath: other } }))).rejects.toThrow(`remove the bad entry from ${other}`);
    await expect(connect(opts({ hostKey: { knownHostsPath: other } }))).rejects.toMatchObject({ code: "EHOSTKEY" });
    const accepted = await connect(opts({ hostKey: (_k, fp) => fp.startsWith("SHA256:") }));
    await accepted.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "an unknown host is refused without making ~/.ssh or a known_hosts file", async () => {
    const emptyHome = join(work.dir, "empty-home");
    mkdirSync(emptyHome);
    const savedHome = process.env.HOME;
    process.env.HOME = emptyHome;
    try {
      const logged: string[] = [];
      await expect(connect(opts({ hostKey: undefined, logger: (_l, m) => logged.push(m) }))).rejects.toThrow("Not accepted automatically");
      expect(readdirSync(emptyHome)).toEqual([]);
      expect(logged).toContain(`Failed to open ${emptyHome}/.ssh/known_hosts: ENOENT`);
    } finally {
      process.env.HOME = savedHome;
    }
    const missing = join(work.dir, "missing_known_hosts");
    await expect(connect(opts({ hostKey: { knownHostsPath: missing } }))).rejects.toThrow("Not accepted automatically");
    expect(existsSync(missing)).toBe(false);
  });

  itAsRoot(["sshd", "ssh-keygen"], "a Buffer command, env value or username goes as its bytes (not UTF-8: Latin-1)", async () => {
    const e9 = Buffer.from([0xe9]);
    const client = await connect(opts({ username: Buffer.from(USER) }));
    const cmd = client.exec(Buffer.concat([Buffer.from("printf '%s|%s' 'caf"), e9, Buffer.from(`' "$LC_DBTS"`)]), { env: { LC_DBTS: Buffer.concat([Buffer.from("r"), e9]) } });
    cmd.stdin.end();
    const out = collect(cmd.stdout);
    expect(await cmd.exit).toEqual({ code: 0 });
    expect(await out).toEqual(Buffer.concat([Buffer.from("caf"), e9, Buffer.from("|r"), e9]));
    expect(() => client.exec(1 as unknown as string)).toThrow(new TypeError("exec: the command must be a string or a Buffer"));
    expect(() => client.exec("true", { env: { A: 1 as unknown as string } })).toThrow(new TypeError("env A: the value must be a string or a Buffer"));
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "arguments of the wrong type throw a TypeError and leave the session alone", async () => {
    // readyTimeout 0 is no limit, as keepaliveInterval and idleTimeout 0 are none.
    const client = await connect(opts({ readyTimeout: 0 }));
    const sh = client.shell({ pty: { cols: 80, rows: 24 } });
    for (const [cols, rows] of [[undefined, undefined], [null, null], ["80", "24"], [1.5, 2], [-1, 24], [2 ** 32, 24]]) {
      expect(() => sh.setWindow(cols as number, rows as number)).toThrow(new TypeError("setWindow: cols and rows must be whole numbers from 0 to 4294967295"));
    }
    sh.setWindow(100, 30);
    expect(() => client.exec("true", null as unknown as object)).toThrow(new TypeError("exec: options must be an object"));
    expect(() => client.exec("true", { env: "A=1" as unknown as Record<string, string> })).toThrow(new TypeError("exec: env must be an object of names and values"));
    expect(() => client.exec("true", { pty: "yes" as unknown as boolean })).toThrow(new TypeError("exec: pty must be true, false or { term, cols, rows }"));
    expect(() => client.shell(null as unknown as object)).toThrow(new TypeError("shell: options must be an object"));
    expect(() => client.exec("true", { ptty: true } as object)).toThrow(new TypeError("exec: unknown option 'ptty'"));
    expect(() => client.shell({ pty: { term: "vt100", width: 80 } as object })).toThrow(new TypeError("shell: unknown option 'width'"));
    expect(() => client.forwardLocal({ listenPort: 0, host: "127.0.0.1", port: 9, bind: "x" } as ForwardOptions)).toThrow(new TypeError("forwardLocal: unknown option 'bind'"));
    sh.stdin.end("stty size; exit 4\n");
    const out = collect(sh.stdout);
    expect(await sh.exit).toEqual({ code: 4 });
    expect((await out).toString()).toMatch(/30 100/);
    const cmd = client.exec("echo still here");
    cmd.stdin.end();
    expect((await collect(cmd.stdout)).toString()).toBe("still here\n");
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "signal(): the remote command gets it", async () => {
    // Once the command runs: sshd loses a signal that comes before its child has made its own
    // process group (killpg's ESRCH), even after it has accepted the exec request. (The
    // library's server takes one asked for before the channel is open: library-server.test.ts.)
    const client = await connect(opts());
    const late = client.exec("echo started; sleep 30");
    late.stdin.end();
    await once(late.stdout, "data");
    late.signal("USR1");
    expect(await late.exit).toEqual({ signal: "USR1", coreDumped: false });
    expect(() => late.signal("WINCH")).toThrow(new TypeError("signal: not a signal SSH names: WINCH"));
    await client.end();
  });

  itAsRoot(["ssh-keygen"], "signal() and setWindow() once our CLOSE is out send nothing: the server may have freed the channel", async () => {
    // Our streams gone, so we CLOSE first; the first TERM ends `yes`, and Dropbear then frees the
    // channel as it sends its own CLOSE. A request still sent after ours (until that CLOSE came
    // back) named a channel the server no longer had, and it ended the whole connection
    // ("Unknown channel 0"): the next exec failed. (sshd was not seen to free it that soon.)
    const server = await startOurDropbearWithHostKey(work.dir);
    try {
      const client = await connect(opts({ port: server.port, hostKey: false }));
      for (let round = 0; round < 3; round++) {
        const busy = client.exec("yes", { pty: true });
        busy.stdin.end();
        busy.stdout.destroy();
        busy.stderr.destroy();
        let settled = false;
        const exit = busy.exit.finally(() => (settled = true));
        for (let i = 0; i < 500 && !settled; i++) {
          busy.signal("TERM");
          busy.setWindow(80 + (i % 5), 24);
          await new Promise((r) => setTimeout(r, 2));
        }
        // TERM, or HUP where our CLOSE reached the server before the first TERM did: it then
        // closes the pty's master, as C's does, and the kernel hangs the terminal up.
        expect(await exit).toEqual({ signal: expect.stringMatching(/^(TERM|HUP)$/), coreDumped: false });
        const cmd = client.exec("echo still here");
        cmd.stdin.end();
        expect((await collect(cmd.stdout)).toString()).toBe("still here\n");
      }
      await client.end();
      expect(server.log()).not.toMatch(/Unknown channel/);
    } finally {
      await server.stop();
    }
  });

  itAsRoot(["sshd", "ssh-keygen"], "a key the server does not know is refused with an error, not a crash", async () => {
    await expect(connect(opts({ privateKeyPath: otherKey }))).rejects.toMatchObject({ message: "No auth methods could be used.", code: "EAUTH" });
    await expect(connect(opts({ privateKeyPath: join(work.dir, "no-such-key") }))).rejects.toMatchObject({ message: expect.stringMatching(/Failed loading keyfile .*ENOENT/), code: "EKEYFILE" });
    // Key material works as a file does.
    const client = await connect(opts({ privateKeyPath: undefined, privateKey: readFileSync(key) }));
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen", "dropbearkey", "ssh-agent", "ssh-add"], "authenticates with a Dropbear key, an encrypted OpenSSH key, an agent or a password", async () => {
    const tryAuth = async (o: Partial<ConnectOptions>): Promise<string> => {
      const client = await connect(opts({ privateKeyPath: undefined, ...o }));
      const cmd = client.exec("id -un");
      cmd.stdin.end();
      const out = await collect(cmd.stdout);
      await cmd.exit;
      await client.end();
      return out.toString().trim();
    };
    expect(await tryAuth({ privateKeyPath: dropbearKey })).toBe(USER);
    expect(await tryAuth({ privateKeyPath: encKey, passphrase: PASSPHRASE })).toBe(USER);
    expect(await tryAuth({ privateKey: readFileSync(encKey, "utf8"), passphrase: PASSPHRASE })).toBe(USER);
    expect(await tryAuth({ agent: agentSock })).toBe(USER);
    expect(await tryAuth({ password: PASSWORD })).toBe(USER);
    // A wrong passphrase drops the key; a wrong password is tried once: both end in a refusal.
    await expect(connect(opts({ privateKeyPath: encKey, passphrase: "wrong" }))).rejects.toThrow("No auth methods could be used.");
    await expect(connect(opts({ privateKeyPath: undefined, password: "wrong" }))).rejects.toMatchObject({ code: "EAUTH" });
    // Nothing was asked on a terminal, and a library has no terminal prompt to hang on.
  });

  itAsRoot(["sshd", "ssh-keygen"], "shell with a pty of the given size and terminal type", async () => {
    const client = await connect(opts());
    const sh = client.shell({ pty: { term: "vt100", cols: 101, rows: 33 } });
    const out = collect(sh.stdout);
    sh.stdin.end("stty size; echo term=$TERM; exit 5\n");
    expect(await sh.exit).toEqual({ code: 5 });
    const text = (await out).toString();
    expect(text).toContain("33 101");
    expect(text).toContain("term=vt100");
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen", "sftp-server"], "subsystem: sftp answers SSH_FXP_INIT with its version", async () => {
    const client = await connect(opts());
    const sftp = client.subsystem("sftp");
    // uint32 length 5, SSH_FXP_INIT (1), version 3; the server answers SSH_FXP_VERSION (2).
    // stdin stays open until then: sftp-server quits at EOF without flushing its answer.
    sftp.stdin.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]));
    let reply = Buffer.alloc(0);
    for await (const chunk of sftp.stdout) {
      reply = Buffer.concat([reply, chunk as Buffer]);
      if (reply.length >= 4 && reply.length >= reply.readUInt32BE(0) + 4) break;
    }
    sftp.stdin.end();
    expect(reply.readUInt32BE(0)).toBe(reply.length - 4);
    expect(reply[4]).toBe(2);
    expect(reply.readUInt32BE(5)).toBe(3);
    expect(await sftp.exit).toEqual({ code: 0 });
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "a stream's reader may keep every chunk it is given: 4 MB back through forwardOut intact", async () => {
    const client = await connect(opts());
    const data = payload(4 << 20);
    const stream = await client.forwardOut("127.0.0.1", 5555, "127.0.0.1", echo!.port);
    // 'data' hands over the very Buffers the channel wrote, no copy: they are kept to the end.
    const parts: Buffer[] = [];
    stream.on("data", (c: Buffer) => parts.push(c));
    const ended = once(stream, "end");
    stream.end(data);
    await ended;
    expect(sha(Buffer.concat(parts))).toBe(sha(data));
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "forwardOut carries a stream to a target; forwardLocal and forwardRemote bind port 0", async () => {
    const client = await connect(opts());
    const data = payload(300_000);
    const stream = await client.forwardOut("127.0.0.1", 5555, "127.0.0.1", echo!.port);
    const got = collect(stream);
    stream.end(data);
    expect(sha(await got)).toBe(sha(data));
    await expect(client.forwardOut("127.0.0.1", 5555, "127.0.0.1", 1)).rejects.toMatchObject({
      message: "Channel open refused: connect failed: Connection refused (direct-tcpip to 127.0.0.1:1)",
      code: "ECHANNEL",
    });

    const local = await client.forwardLocal({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: echo!.port });
    expect(local.port).toBeGreaterThan(0);
    const l = await echoThrough(local.port, data);
    expect(l.got).toBe(l.sent);

    const remote = await client.forwardRemote({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: echo!.port });
    expect(remote.port).toBeGreaterThan(0);
    const r = await echoThrough(remote.port, data);
    expect(r.got).toBe(r.sent);
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "a server that drops the connection ends the session with close and error events, not a crash", async () => {
    const client = await connect(opts());
    const errors: Error[] = [];
    client.on("error", (e: Error) => errors.push(e));
    // Not events.once: that rejects on the "error" event, which comes first.
    const closed = new Promise<[Error | null]>((resolve) => client.once("close", (e: Error | null) => resolve([e])));
    // Listeners come off as typed as they go on.
    const unused = (e: SshError | null): void => void e;
    client.prependListener("close", unused).off("close", unused);
    // @ts-expect-error: "error" gives an SshError, not a number
    client.removeListener("error", (n: number) => void n);
    expect(client.listenerCount("close")).toBe(1);
    // sshd's per-connection process is the shell's parent: killing it drops the TCP connection.
    const cmd = client.exec("kill -9 $PPID");
    cmd.stdin.end();
    await expect(cmd.exit).rejects.toThrow(/Remote closed the connection|Connection reset|Error reading/);
    const [error] = await closed;
    expect(error?.message).toMatch(/Remote closed the connection|Connection reset|Error reading/);
    expect((error as SshError).code).toBe("ECLOSED");
    expect(errors).toEqual([error]);
    // Later calls are refused with the same reason.
    expect(() => client.exec("true")).toThrow(error!.message);
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "offers only the ciphers and MACs asked for, in that order", async () => {
    const client = await connect(opts({ ciphers: ["aes128-ctr"], macs: ["hmac-sha2-256"], keepaliveInterval: 30, idleTimeout: 600 }));
    const cmd = client.exec("echo ok");
    cmd.stdin.end();
    expect((await collect(cmd.stdout)).toString()).toBe("ok\n");
    await client.end();
    expect(sshd!.log()).toMatch(/client->server cipher: aes128-ctr MAC: hmac-sha2-256 /);
  });

  it("gives up connecting at readyTimeout or an abort, leaving no handle open", async () => {
    const silent = await silentServer();
    const port = silent.port;
    const before = handles();
    before.set("TCPServerWrap", (before.get("TCPServerWrap") ?? 1) - 1);
    const base = { host: "127.0.0.1", port, username: "nobody", hostKey: false as const };
    await expect(connect({ ...base, readyTimeout: 300 })).rejects.toThrow("connect: not authenticated within 300 ms");
    const ac = new AbortController();
    const pending = connect({ ...base, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    await expect(pending).rejects.toThrow("connect: aborted");
    await expect(connect({ ...base, signal: AbortSignal.abort() })).rejects.toThrow("connect: aborted");
    // Our own server's side of those connections goes too; the client's must already be gone.
    expect(silent.accepted.length).toBeLessThanOrEqual(2);
    await silent.close();
    await new Promise((r) => setImmediate(r));
    const after = handles();
    for (const [type, n] of after) expect(`${type}: ${n}`).toBe(`${type}: ${Math.min(n, before.get(type) ?? 0)}`);
  });

  itAsRoot(["sshd", "ssh-keygen"], "a connect() given up while the hostKey callback decides has closed its socket by the time it rejects", async () => {
    // sshd runs in another process: every TCP socket counted here is the client's (or an
    // earlier test's, still closing: hence at most as many as before).
    const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length;
    // Counted as the rejection arrives (expect().rejects waits turns of its own).
    const whenRejected = (p: Promise<unknown>): Promise<{ code: unknown; open: number }> =>
      p.then(
        () => ({ code: "resolved", open: sockets() }),
        (e: unknown) => ({ code: (e as SshError).code, open: sockets() }),
      );
    // A whole connection first: what earlier tests left has closed by the time it has ended.
    await (await connect(opts())).end();
    const before = sockets();
    const undecided = (): Promise<boolean> => new Promise<boolean>(() => {});
    const timedOut = await whenRejected(connect(opts({ kex: ["curve25519-sha256"], readyTimeout: 300, hostKey: undecided })));
    expect(timedOut.code).toBe("ETIMEOUT");
    expect(timedOut.open).toBeLessThanOrEqual(before);
    const ac = new AbortController();
    const aborted = await whenRejected(
      connect(
        opts({
          signal: ac.signal,
          hostKey: () => {
            ac.abort();
            return undecided();
          },
        }),
      ),
    );
    expect(aborted.code).toBe("EABORTED");
    expect(aborted.open).toBeLessThanOrEqual(before);
  });

  it("kexGuess: our KEXINIT says a guess follows, and our first method's KEXDH_INIT does; by default neither", async () => {
    // A server that sends its version line and reads ours, then the client's first packets (in clear).
    const seen: { follows: number; next: number | null }[] = [];
    const srv = net.createServer((sock) => {
      sock.on("error", () => undefined);
      sock.write("SSH-2.0-inspector\r\n");
      let buf = Buffer.alloc(0);
      sock.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const start = buf.indexOf("\r\n") + 2;
        const packets: Buffer[] = [];
        for (let at = start; start > 1 && at + 4 <= buf.length; ) {
          const len = buf.readUInt32BE(at);
          if (at + 4 + len > buf.length) break;
          packets.push(buf.subarray(at + 5, at + 4 + len - buf[at + 4]!));
          at += 4 + len;
        }
        const ki = packets[0];
        if (ki === undefined) return;
        let off = 17; // message number and cookie
        for (let i = 0; i < 10; i++) off += 4 + ki.readUInt32BE(off);
        const follows = ki[off]!;
        if (follows === 1 && packets.length < 2) return;
        seen.push({ follows, next: packets[1]?.[0] ?? null });
        sock.destroy();
      });
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    const base = { host: "127.0.0.1", port: (srv.address() as net.AddressInfo).port, username: "nobody", hostKey: false as const };
    await expect(connect({ ...base, kexGuess: true })).rejects.toThrow();
    await expect(connect(base)).rejects.toThrow();
    await expect(connect({ ...base, kexGuess: "yes" as unknown as boolean })).rejects.toThrow("connect: bad kexGuess yes");
    await new Promise<void>((r) => srv.close(() => r()));
    // SSH_MSG_KEXDH_INIT (30) right behind the KEXINIT; none without the guess.
    expect(seen).toEqual([
      { follows: 1, next: 30 },
      { follows: 0, next: null },
    ]);
  });

  itAsRoot(["sshd", "ssh-keygen"], "kexGuess: true reaches OpenSSH's sshd, whose first method is ours (the guess is right)", async () => {
    const client = await connect(opts({ kexGuess: true }));
    const cmd = client.exec("echo ok");
    cmd.stdin.end();
    expect((await collect(cmd.stdout)).toString()).toBe("ok\n");
    await client.end();
  });

  itAsRoot(["sshd", "ssh-keygen"], "readyTimeout and an abort also end a wait for a host key verifier that never answers", async () => {
    const never = (): Promise<boolean> => new Promise<boolean>(() => {});
    const t0 = Date.now();
    await expect(connect(opts({ hostKey: never, readyTimeout: 500 }))).rejects.toMatchObject({ message: "connect: not authenticated within 500 ms", code: "ETIMEOUT" });
    expect(Date.now() - t0).toBeLessThan(5_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await expect(connect(opts({ hostKey: never, signal: ac.signal }))).rejects.toMatchObject({ message: "connect: aborted", code: "EABORTED" });
    // Only true accepts a key: a truthy string is no answer.
    await expect(connect(opts({ hostKey: async () => "yes" as unknown as boolean }))).rejects.toThrow("Host key not accepted");
  });

  itAsRoot(["sshd", "ssh-keygen"], "bad options fail before connecting", async () => {
    await expect(connect(opts({ ciphers: ["aes128-ctr", "rot13"] }))).rejects.toMatchObject({ message: "connect: unknown cipher 'rot13'", code: "EOPTION" });
    await expect(connect(opts({ macs: [] }))).rejects.toThrow("connect: bad macs (an empty list)");
    await expect(connect(opts({ ciphers: "aes128-ctr" as unknown as string[] }))).rejects.toThrow("connect: bad ciphers (string)");
    await expect(connect(opts({ kex: ["rot13"] }))).rejects.toThrow("connect: unknown kex 'rot13'");
    await expect(connect(opts({ kex: ["ext-info-c"] }))).rejects.toThrow("connect: unknown kex 'ext-info-c'");
    // The list is what is offered: OpenSSH 9.2's sshd has no ML-KEM (9.9 added it).
    await expect(connect(opts({ kex: ["mlkem768x25519-sha256"] }))).rejects.toMatchObject({ message: "No matching algo kex", code: "EKEX" });
    const x25519 = await connect(opts({ kex: ["curve25519-sha256"] }));
    await x25519.end();
    await expect(connect(opts({ port: "22" as unknown as number }))).rejects.toThrow('connect: bad port "22" (a string)');
    await expect(connect(null as unknown as ConnectOptions)).rejects.toThrow("connect: options must be an object");
    // A misspelt name is no option at all: left unread, it would have connected without the key.
    await expect(connect({ ...opts(), privatKeyPath: "id" } as ConnectOptions)).rejects.toMatchObject({ message: "connect: unknown option 'privatKeyPath'", code: "EOPTION" });
    await expect(connect(opts({ hostKey: { knownHostsPath: "/dev/null", hashed: true } as { knownHostsPath: string } }))).rejects.toThrow("connect: unknown option 'hashed'");
    // Only connect() makes a Client.
    expect(() => new (Client as unknown as new () => Client)()).toThrow(new TypeError("Client: made by connect(), not by new"));
    await expect(connect(opts({ keepaliveInterval: -1 }))).rejects.toThrow("connect: bad keepaliveInterval -1");
    await expect(connect(opts({ port: 70000 }))).rejects.toThrow("connect: bad port 70000");
    await expect(connect(opts({ username: "" }))).rejects.toThrow("connect: username is required");
    await expect(connect(opts({ host: "" }))).rejects.toThrow("connect: host is required");
    const closedPort = await freePort();
    await expect(connect(opts({ port: closedPort }))).rejects.toMatchObject({ message: expect.stringMatching(/^Connect failed: /), code: "ECONNECT" });
  });

  itAsRoot(["sshd", "ssh-keygen"], "10 clients in one process, each running a command, closed with no handle left open", async () => {
    // Earlier tests' sockets and children finish closing first.
    await new Promise((r) => setTimeout(r, 300));
    const before = handles();
    const clients: Client[] = await Promise.all(Array.from({ length: 10 }, () => connect(opts())));
    const outs = await Promise.all(
      clients.map(async (c, i) => {
        const cmd = c.exec(`echo client ${i}`);
        cmd.stdin.end();
        const out = await collect(cmd.stdout);
        await cmd.exit;
        return out.toString();
      }),
    );
    expect(outs).toEqual(Array.from({ length: 10 }, (_, i) => `client ${i}\n`));
    // Half of them with a -L listener and a tunnelled connection still open at end().
    const target = await startEchoTarget();
    const open = await Promise.all(
      clients.slice(0, 5).map(async (c) => {
        const l = await c.forwardLocal({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: target.port });
        const s = net.connect(l.port, "127.0.0.1");
        s.on("error", () => undefined);
        await once(s, "connect");
        s.write("x");
        await once(s, "data");
        return s;
      }),
    );
    await Promise.all(clients.map((c) => c.end()));
    for (const s of open) s.destroy();
    await target.close();
    // end() resolved only once its sockets and listeners were closed: nothing to wait for here
    // but our own test sockets, whose close the next turn completes.
    await new Promise((r) => setImmediate(r));
    const after = handles();
    for (const [type, n] of after) expect(`${type}: ${n}`).toBe(`${type}: ${Math.min(n, before.get(type) ?? 0)}`);
  });
});
