import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import * as net from "node:net";
import { finished, type Duplex } from "node:stream";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, createServer, SshError, type ConnectOptions, type Server, type ServerOptions, type SshErrorCode } from "dropbear-ts";
import { freePort, ourKeygen, scratch } from "./helpers/servers.js";
import { silentServer } from "./helpers/sockets.js";

// SshError.code: every failure the library's client reports carries a code a program can test,
// whatever the message says. Real loopback connections: the library's own server (in this
// process, no accounts), a silent TCP server, a port nothing listens on.

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const work = scratch("dbts-liberr-");
const hostEd25519 = join(work.dir, "host_ed25519");
const hostRsa = join(work.dir, "host_rsa");
const key = join(work.dir, "id_ed25519");
const servers: Server[] = [];

beforeAll(() => {
  ourKeygen(hostEd25519, "ed25519");
  ourKeygen(hostRsa, "rsa");
  ourKeygen(key, "ed25519");
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  work.cleanup();
});

/** A library server on a loopback port; closed after the file's tests. */
async function serve(options: Partial<ServerOptions> = {}): Promise<{ server: Server; base: ConnectOptions }> {
  const server = createServer({ hostKeys: [hostEd25519], authenticate: () => true, ...options });
  servers.push(server);
  const { port } = await server.listen(0);
  return { server, base: { host: "127.0.0.1", port, username: "me", privateKeyPath: key, hostKey: false } };
}

/** What a promise rejects with, checked to be an SshError with this code. */
/** Run `code` as an ES module in a child Node (argv[1] the host key): its stdout and stderr together, and its exit status. */
async function runModule(code: string): Promise<{ out: string; status: number | null }> {
  const child = spawn(process.execPath, ["--input-type=module", "-e", code, hostEd25519], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [status] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { out, status };
}

async function failure(p: Promise<unknown>, code: SshErrorCode): Promise<SshError> {
  const e: unknown = await p.then(
    () => new Error("resolved"),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SshError);
  // The message in the report says which failure got the wrong code.
  expect((e as SshError).code, (e as Error).message).toBe(code);
  return e as SshError;
}

/** A callback that throws `value`. */
function throwing(value: unknown): () => never {
  return () => {
    throw value;
  };
}

describe("SshError.code for connect()'s failures", () => {
  it("ECONNECT: nothing listens on the port", async () => {
    const e = await failure(connect({ host: "127.0.0.1", port: await freePort(), username: "me", hostKey: false }), "ECONNECT");
    expect(e.message).toMatch(/^Connect failed: .*Connection refused/);
  });

  it("EHOSTKEY: refused by the callback, thrown by it, or not in known_hosts", async () => {
    const { base } = await serve();
    expect((await failure(connect({ ...base, hostKey: () => false }), "EHOSTKEY")).message).toBe("Host key not accepted");
    const bug = new Error("verifier broke");
    const thrown = await failure(connect({ ...base, hostKey: throwing(bug) }), "EHOSTKEY");
    expect(thrown.message).toBe("verifier broke");
    expect(thrown.cause).toBe(bug);
    const rejected = await failure(connect({ ...base, hostKey: async () => Promise.reject(bug) }), "EHOSTKEY");
    expect(rejected.cause).toBe(bug);
    // A thrown value String() cannot convert (a null-prototype object) is the callback's
    // refusal still, not EINTERNAL from our own attempt to describe it.
    const odd: unknown = Object.create(null);
    const oddThrow = await failure(connect({ ...base, hostKey: throwing(odd) }), "EHOSTKEY");
    expect(oddThrow.message).toBe("[object Object]");
    await failure(connect({ ...base, hostKey: async () => Promise.reject(odd) }), "EHOSTKEY");
    const empty = join(work.dir, "empty_known_hosts");
    writeFileSync(empty, "");
    expect((await failure(connect({ ...base, hostKey: { knownHostsPath: empty } }), "EHOSTKEY")).message).toBe("Not accepted automatically");
  });

  it("a thenable (not a native promise) from hostKey or authenticate is awaited as a promise is: its rejection, readyTimeout, its answer", async () => {
    // Another library's promise, or a query builder: it has then() and nothing else.
    const thenable = <T>(settle: (resolve: (v: T) => void, reject: (e: unknown) => void) => void): PromiseLike<T> =>
      ({ then: (resolve: (v: T) => void, reject: (e: unknown) => void) => settle(resolve, reject) }) as unknown as PromiseLike<T>;
    const { base } = await serve();
    const bug = new Error("verifier broke");
    const rejected = await failure(connect({ ...base, hostKey: () => thenable<boolean>((_res, rej) => rej(bug)) }), "EHOSTKEY");
    expect(rejected.cause).toBe(bug);
    expect((await failure(connect({ ...base, hostKey: () => thenable<boolean>((res) => res(false)) }), "EHOSTKEY")).message).toBe("Host key not accepted");
    // One that never answers is given up at readyTimeout, as a promise is.
    await failure(connect({ ...base, readyTimeout: 300, hostKey: () => thenable<boolean>(() => {}) }), "ETIMEOUT");
    const accepted = await connect({ ...base, hostKey: () => thenable<boolean>((res) => res(true)) });
    await accepted.end();
    // The server side: a thenable's true lets the user in.
    const { base: viaThenable } = await serve({ authenticate: () => thenable<boolean>((res) => setTimeout(() => res(true), 10)) });
    const client = await connect(viaThenable);
    await client.end();
  });

  it("EAUTH: no method left, or the password refused", async () => {
    const { base } = await serve({ authenticate: () => false });
    expect((await failure(connect(base), "EAUTH")).message).toBe("No auth methods could be used.");
    expect((await failure(connect({ ...base, privateKeyPath: undefined, password: "wrong" }), "EAUTH")).message).toBe("Interrupted.");
  });

  it("EKEYFILE: a key file missing or not a key", async () => {
    const base = { host: "127.0.0.1", port: 1, username: "me", hostKey: false as const };
    expect((await failure(connect({ ...base, privateKeyPath: join(work.dir, "nope") }), "EKEYFILE")).message).toMatch(/^Failed loading keyfile .*ENOENT/);
    await failure(connect({ ...base, privateKey: "not a key" }), "EKEYFILE");
  });

  it("EOPTION: an option of the wrong type or value, an unknown algorithm", async () => {
    const base = { host: "127.0.0.1", port: 1, username: "me", hostKey: false as const };
    await failure(connect(null as unknown as ConnectOptions), "EOPTION");
    await failure(connect({ ...base, host: "" }), "EOPTION");
    expect((await failure(connect({ ...base, host: "127.0.0.1\0evil" }), "EOPTION")).message).toBe("connect: bad host (it holds a NUL byte)");
    await failure(connect({ ...base, port: 70000 }), "EOPTION");
    await failure(connect({ ...base, password: 1 as unknown as string }), "EOPTION");
    await failure(connect({ ...base, kex: ["rot13"] }), "EOPTION");
    await failure(connect({ ...base, readyTimeout: -1 }), "EOPTION");
  });

  it("EOPTION: a username or password too long for one SSH packet, before connecting (not EPROTOCOL once the auth request is built)", async () => {
    const { base } = await serve();
    const long = "u".repeat(140_000);
    expect((await failure(connect({ ...base, username: long }), "EOPTION")).message).toBe("connect: username too long (140000 bytes)");
    expect((await failure(connect({ ...base, privateKeyPath: undefined, password: long }), "EOPTION")).message).toBe("connect: password too long (140000 bytes)");
  });

  it("ETIMEOUT and EABORTED: a server that never answers", async () => {
    const silent = await silentServer();
    const base = { host: "127.0.0.1", port: silent.port, username: "me", hostKey: false as const };
    try {
      expect((await failure(connect({ ...base, readyTimeout: 200 }), "ETIMEOUT")).message).toBe("connect: not authenticated within 200 ms");
      const ac = new AbortController();
      const reason = new Error("user gave up");
      setTimeout(() => ac.abort(reason), 100);
      const aborted = await failure(connect({ ...base, signal: ac.signal }), "EABORTED");
      expect(aborted.message).toBe("connect: aborted");
      // The signal's reason is the cause, as for Node's own AbortErrors.
      expect(aborted.cause).toBe(reason);
      expect((await failure(connect({ ...base, signal: AbortSignal.abort(reason) }), "EABORTED")).cause).toBe(reason);
    } finally {
      await silent.close();
    }
  });

  it("ETIMEOUT or EAUTH, not a hang: an agent that never answers is given up at readyTimeout", async () => {
    // The agent is asked synchronously, as dbclient asks it: before, one that took the request
    // and never answered held the caller's whole event loop, readyTimeout's timer too, for good.
    const { base } = await serve({ authenticate: (ctx) => ctx.method === "publickey" });
    const sock = join(work.dir, "silent-agent.sock");
    const held: net.Socket[] = [];
    const agent = net.createServer((c) => held.push(c));
    agent.listen(sock);
    await once(agent, "listening");
    try {
      const code = `
        import { connect } from "dropbear-ts";
        const t0 = Date.now();
        await connect(${JSON.stringify({ host: base.host, port: base.port, username: "me", hostKey: false, agent: sock, readyTimeout: 500 })}).then(
          () => console.log("connected"),
          (e) => console.log(Date.now() - t0 < 5000 ? "given up" : "late", e.code),
        );
        process.exit(0);
      `;
      const { out, status } = await runModule(code);
      expect(out.trim()).toMatch(/^given up (ETIMEOUT|EAUTH)$/);
      expect(status).toBe(0);
    } finally {
      for (const c of held) c.destroy();
      agent.close();
    }
  });

  it("EPROTOCOL: a server that speaks SSH-1", async () => {
    const old = net.createServer((s) => {
      s.on("error", () => undefined);
      // Read what comes (the client's version line and KEXINIT), or this side never sees its EOF.
      s.resume();
      s.end("SSH-1.5-old\r\n");
    });
    old.listen(0, "127.0.0.1");
    await once(old, "listening");
    try {
      const e = await failure(connect({ host: "127.0.0.1", port: (old.address() as net.AddressInfo).port, username: "me", hostKey: false }), "EPROTOCOL");
      expect(e.message).toMatch(/^Incompatible remote version/);
    } finally {
      await new Promise<void>((r) => old.close(() => r()));
    }
  });

  it("ECLOSED: a server that sends a disconnect", async () => {
    // SSH_MSG_DISCONNECT (1) in the clear, before the key exchange: reason 11 (by application), "bye".
    const payload = Buffer.from([1, 0, 0, 0, 11, 0, 0, 0, 3, ...Buffer.from("bye"), 0, 0, 0, 0]);
    const padding = 8 - ((5 + payload.length) % 8) + 8;
    const packet = Buffer.alloc(5 + payload.length + padding);
    packet.writeUInt32BE(1 + payload.length + padding, 0);
    packet[4] = padding;
    payload.copy(packet, 5);
    const bye = net.createServer((s) => {
      s.on("error", () => undefined);
      s.resume();
      s.end(Buffer.concat([Buffer.from("SSH-2.0-bye\r\n"), packet]));
    });
    bye.listen(0, "127.0.0.1");
    await once(bye, "listening");
    try {
      const e = await failure(connect({ host: "127.0.0.1", port: (bye.address() as net.AddressInfo).port, username: "me", hostKey: false }), "ECLOSED");
      // The server's description follows, as OpenSSH's ssh shows it (C Dropbear reads none).
      expect(e.message).toBe("Disconnect received: bye");
    } finally {
      await new Promise<void>((r) => bye.close(() => r()));
    }
  });
  it("ERESOURCE, not EINTERNAL: a first connect() with the process out of descriptors, then one that works", async () => {
    const { base } = await serve();
    // A fresh Node under `ulimit -n 64`, with every descriptor but `free` taken: what the
    // library loads on first use (koffi, Poly1305's module) cannot be opened then.
    const script = `
      import { connect } from "dropbear-ts";
      import { closeSync, openSync } from "node:fs";
      const fds = [];
      try { for (;;) fds.push(openSync("/dev/null", "r")); } catch {}
      const codes = [];
      for (let free = 1; free <= 12; free++) {
        closeSync(fds.pop());
        try {
          const c = await connect({ host: "127.0.0.1", port: ${base.port}, username: "me", password: "pw", hostKey: false, kex: ["curve25519-sha256"] });
          await c.end();
          codes.push("ok");
          break;
        } catch (e) {
          codes.push(e.code + (e.code === "EINTERNAL" ? " " + e.message : ""));
        }
      }
      console.log(JSON.stringify(codes));`;
    const child = spawn("sh", ["-c", 'ulimit -n 64 && exec "$0" --input-type=module -e "$1"', process.execPath, script], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
    const codes = JSON.parse(out) as string[];
    expect(codes.at(-1)).toBe("ok");
    for (const code of codes.slice(0, -1)) {
      expect(["ECONNECT", "ERESOURCE"]).toContain(code);
    }
  });
});

describe("SshError.code once connected", () => {
  it("ECHANNEL: a channel or request the server refuses; the session goes on", async () => {
    const { base } = await serve({ onSession: { shell: (s) => s.exit(0) } });
    const client = await connect(base);
    try {
      const exec = client.exec("true");
      exec.stdin.end();
      expect((await failure(exec.exit, "ECHANNEL")).message).toBe("exec request refused by the server");
      expect((await failure(client.forwardOut("127.0.0.1", 1, "127.0.0.1", 9), "ECHANNEL")).message).toMatch(/^Channel open refused: administratively prohibited/);
      expect((await failure(client.forwardRemote({ listenPort: 0, host: "127.0.0.1", port: 9 }), "ECHANNEL")).message).toMatch(/^Remote TCP forward request failed/);
      expect(await client.shell().exit).toEqual({ code: 0 });
    } finally {
      await client.end();
    }
  });

  it("forwardOut's stream closes when the session goes under it: end(), or the server's close()", async () => {
    const held: net.Socket[] = [];
    const target = net.createServer((x) => void held.push(x.on("error", () => {})));
    target.listen(0, "127.0.0.1");
    await once(target, "listening");
    const port = (target.address() as net.AddressInfo).port;
    const { server, base } = await serve({ onDirectTcpip: () => true });
    const ended = await connect(base);
    const dropped = await connect(base);
    try {
      /** The stream's events until finished() calls back, or 5 s. */
      const events = async (d: Duplex): Promise<string[]> => {
        const seen: string[] = [];
        for (const e of ["end", "error", "close"]) d.on(e, () => seen.push(e));
        d.resume();
        const timer = new Promise((r) => setTimeout(r, 5000, "timeout"));
        await Promise.race([new Promise((r) => finished(d, r)), timer]);
        return seen;
      };
      const mine = events(await ended.forwardOut("127.0.0.1", 1, "127.0.0.1", port));
      await ended.end();
      // Before, 'end' and nothing more: its writing side stayed open, and finished() never called back.
      expect(await mine).toEqual(["end", "close"]);
      const theirs = events(await dropped.forwardOut("127.0.0.1", 1, "127.0.0.1", port));
      dropped.on("error", () => {});
      await server.close();
      expect(await theirs).toEqual(["end", "close"]);
    } finally {
      await dropped.end();
      for (const x of held) x.destroy();
      target.close();
    }
  });

  it("ECLOSED: the server ends the session; what was waiting, the events and later calls all say so", async () => {
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const { server, base } = await serve({ onSession: { exec: () => started() } });
    const client = await connect(base);
    const errors: SshError[] = [];
    client.on("error", (e) => errors.push(e));
    const closed = new Promise<SshError | null>((resolve) => client.once("close", resolve));
    const cmd = client.exec("wait");
    cmd.stdin.end();
    await running;
    await server.close();
    const error = await closed;
    // Our server's close() ends its sessions as dropbear's SIGTERM does: the connection closes
    // (a reset, should our last bytes be unread); ECLOSED either way.
    expect(error?.message).toMatch(/Remote closed the connection|Connection reset|Error reading/);
    expect(error).toBeInstanceOf(SshError);
    expect(error?.code).toBe("ECLOSED");
    expect(errors).toEqual([error]);
    expect((await failure(cmd.exit, "ECLOSED")).message).toBe(error!.message);
    expect(() => client.exec("true")).toThrow(expect.objectContaining({ code: "ECLOSED", message: error!.message }));
    await failure(client.forwardOut("127.0.0.1", 1, "127.0.0.1", 9), "ECLOSED");
    await client.end();
  });

  it("ECLOSED, not EAUTH: the server's close() while its authenticate has not answered (nobody refused the key)", async () => {
    let asked = 0;
    const server = createServer({
      hostKeys: [hostEd25519],
      // The key query, whose refusal the server answers at once (no failure delay).
      authenticate: ({ method }) => {
        if (method !== "publickey") return false;
        asked++;
        return new Promise<boolean>(() => {});
      },
    });
    servers.push(server);
    const { port } = await server.listen(0);
    const connecting = failure(connect({ host: "127.0.0.1", port, username: "me", privateKeyPath: key, hostKey: false, kex: ["curve25519-sha256"] }), "ECLOSED");
    while (asked === 0) await new Promise((r) => setTimeout(r, 10));
    await server.close();
    await connecting;
  });

  it("ECLOSED, not a hang: the server leaves while the hostKey callback has not answered (no readyTimeout)", async () => {
    const { server, base } = await serve();
    let asked = false;
    const hostKey = (): Promise<boolean> => {
      asked = true;
      return new Promise<boolean>(() => {});
    };
    const connecting = failure(connect({ ...base, hostKey }), "ECLOSED");
    while (!asked) await new Promise((r) => setTimeout(r, 10));
    await server.close();
    await connecting;
  });

  it("ECLOSED, not ECHANNEL: the server's close() while its onTcpipForward has not answered", async () => {
    let asked = 0;
    const { server, base } = await serve({
      onTcpipForward: () => {
        asked++;
        return new Promise<boolean>(() => {});
      },
    });
    const client = await connect({ ...base, kex: ["curve25519-sha256"] });
    client.on("error", () => {});
    // Watched at once: it may fail before the server's close() has resolved.
    const forwarding = failure(client.forwardRemote({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: 9 }), "ECLOSED");
    while (asked === 0) await new Promise((r) => setTimeout(r, 10));
    await server.close();
    await forwarding;
  });

  it("ECLOSED: end() settles what was still waiting", async () => {
    const { base } = await serve({ onSession: { exec: () => undefined } });
    const client = await connect(base);
    const cmd = client.exec("wait");
    cmd.stdin.end();
    const ended = client.end();
    expect((await failure(cmd.exit, "ECLOSED")).message).toBe("Client ended");
    await ended;
    expect(() => client.exec("true")).toThrow(expect.objectContaining({ code: "ECLOSED" }));
  });

  it("an 'error' or 'close' listener that throws: end() still resolves, 'close' still follows, each throw is the process's", async () => {
    // In a child: each listener's throw reaches the process as an uncaught exception, as a socket's does.
    const code = `
      import { connect, createServer } from "dropbear-ts";
      process.on("uncaughtException", (e) => console.log("thrown:", e.message));
      const server = createServer({ hostKeys: [process.argv[1]], authenticate: () => true, onSession: { exec: () => {} } });
      const { port } = await server.listen(0);
      const c = await connect({ host: "127.0.0.1", port, username: "me", hostKey: false, kex: ["curve25519-sha256"] });
      c.on("error", () => { throw new Error("listener bug"); });
      c.on("close", (e) => console.log("close:", e?.code));
      c.on("close", () => { throw new Error("close bug"); });
      await new Promise((r) => { c.exec("x"); setTimeout(r, 100); });
      await server.close();
      const t = setTimeout(() => console.log("end() pending"), 3000);
      await c.end();
      clearTimeout(t);
      console.log("ended");
    `;
    const { out, status } = await runModule(code);
    expect(out.split("\n").filter((l) => l !== "").sort()).toEqual(["close: ECLOSED", "ended", "thrown: close bug", "thrown: listener bug"]);
    expect(status).toBe(0);
  });

  it("stream listeners that throw (stdout 'data', stdin 'drain', a handler's stdin 'data' and stdout 'drain'): each throw is the process's, every byte goes through, the session goes on", async () => {
    // In a child, as above. The listeners run as the session loop writes or reads the pipe; their
    // throws ended the session (EINTERNAL), cut stdin short as if it had ended, or hung it.
    const code = `
      import { connect, createServer } from "dropbear-ts";
      import { createHash } from "node:crypto";
      const thrown = {};
      process.on("uncaughtException", (e) => (thrown[e.message] = (thrown[e.message] ?? 0) + 1));
      const server = createServer({ hostKeys: [process.argv[1]], authenticate: () => true, onSession: { exec: (s) => {
        s.stdin.on("data", (d) => {
          if (!s.stdout.write(d)) {
            s.stdin.pause();
            s.stdout.once("drain", () => { s.stdin.resume(); throw new Error("server drain"); });
          }
        });
        s.stdin.once("data", () => { throw new Error("server data"); });
        s.stdin.on("end", () => s.exit(0));
      } } });
      const { port } = await server.listen(0);
      const c = await connect({ host: "127.0.0.1", port, username: "me", hostKey: false, kex: ["curve25519-sha256"] });
      const r = c.exec("echo");
      const sent = createHash("sha256"), got = createHash("sha256");
      r.stdout.on("data", (d) => got.update(d));
      r.stdout.once("data", () => { throw new Error("client data"); });
      let n = 0;
      const pump = () => {
        for (; n < 64; n++) {
          const b = Buffer.alloc(65536, n);
          sent.update(b);
          if (!r.stdin.write(b)) { n++; r.stdin.once("drain", () => { pump(); throw new Error("client drain"); }); return; }
        }
        r.stdin.end();
      };
      pump();
      const exit = await r.exit;
      const again = c.exec("echo");
      again.stdin.end("more");
      again.stdout.resume();
      console.log(JSON.stringify({ exit, same: sent.digest("hex") === got.digest("hex"), again: await again.exit, thrown: Object.keys(thrown).sort() }));
      await c.end();
      await server.close();
    `;
    const { out, status } = await runModule(code);
    expect(out.trim()).toBe(
      JSON.stringify({ exit: { code: 0 }, same: true, again: { code: 0 }, thrown: ["client data", "client drain", "server data", "server drain"] }),
    );
    expect(status).toBe(0);
  });

  it("ETIMEOUT: idleTimeout ends a quiet session", async () => {
    const { base } = await serve();
    // 2, not 1: the timeout counts whole seconds as Dropbear's monotonic_now does, so 1 can
    // fire between two packets of the login a few ms apart across a second's boundary.
    const client = await connect({ ...base, idleTimeout: 2 });
    const error = await new Promise<SshError | null>((resolve) => client.once("close", resolve));
    expect(error?.message).toBe("Idle timeout");
    expect(error?.code).toBe("ETIMEOUT");
  }, 15_000);
});

describe("Server.listen's arguments", () => {
  it("an empty or null host (Node's every interface) or a port that is not 0-65535 rejects with a TypeError, binding nothing", async () => {
    const server = createServer({ hostKeys: [hostEd25519], authenticate: () => false });
    servers.push(server);
    const listen = server.listen.bind(server) as (port?: unknown, host?: unknown) => Promise<unknown>;
    await expect(listen(0, "")).rejects.toThrow(new TypeError('Server.listen: host must be a non-empty string ("::" for every interface), not ""'));
    await expect(listen(0, null)).rejects.toThrow(TypeError);
    await expect(listen("2222")).rejects.toThrow(new TypeError('Server.listen: port must be a whole number from 0 to 65535, not "2222"'));
    for (const port of [null, -1, 1.5, 65536]) await expect(listen(port)).rejects.toThrow(TypeError);
    expect(server.address()).toBeNull();
    // Nothing was taken: the default still binds loopback.
    expect((await server.listen()).address).toBe("127.0.0.1");
  });
});

describe("hostKeyAlgorithms (dbclient's -o HostKeyAlgorithms=)", () => {
  it("picks the server's host key by algorithm; one the server lacks fails with EKEX, an unknown name with EOPTION", async () => {
    const { base } = await serve({ hostKeys: [hostEd25519, hostRsa] });
    const seen = async (hostKeyAlgorithms?: string[]): Promise<string> => {
      let algorithm = "";
      const client = await connect({
        ...base,
        hostKeyAlgorithms,
        hostKey: (k) => {
          algorithm = `${k.algorithm} ${k.blob.subarray(4, 4 + k.blob.readUInt32BE(0)).toString()}`;
          return true;
        },
      });
      await client.end();
      return algorithm;
    };
    expect(await seen()).toBe("ssh-ed25519 ssh-ed25519");
    expect(await seen(["rsa-sha2-256"])).toBe("ssh-rsa ssh-rsa");
    expect(await seen(["rsa-sha2-512", "ssh-ed25519"])).toBe("ssh-rsa ssh-rsa");

    const { base: edOnly } = await serve();
    expect((await failure(connect({ ...edOnly, hostKeyAlgorithms: ["rsa-sha2-256"] }), "EKEX")).message).toBe("No matching algo hostkey");
    const opt = { host: "127.0.0.1", port: 1, username: "me", hostKey: false as const };
    expect((await failure(connect({ ...opt, hostKeyAlgorithms: ["ssh-ed25519", "ssh-foo"] }), "EOPTION")).message).toBe("connect: unknown host key algorithm 'ssh-foo'");
    expect((await failure(connect({ ...opt, hostKeyAlgorithms: "rsa-sha2-256" as unknown as string[] }), "EOPTION")).message).toBe("connect: bad hostKeyAlgorithms (string)");
    expect((await failure(connect({ ...opt, hostKeyAlgorithms: [] }), "EOPTION")).message).toBe("connect: bad hostKeyAlgorithms (an empty list)");
  });
});
