import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { join } from "node:path";
import ssh2 from "ssh2";
import { connect } from "dropbear-ts";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { childrenOf } from "./helpers/procs.js";
import { OURS, ourKeygen, runOurClient, scratch, type RunResult } from "./helpers/servers.js";
import { onClearPackets, sshString, u32 } from "./helpers/wire.js";

// Hostile servers against our dbclient. Whatever a server sends, dbclient ends with status 1 and
// one line saying why, as Dropbear's does (or, for what a server may ask and be refused, refuses
// it and goes on): never a stack trace, a hang or unbounded reading. Before the key exchange a
// plain TCP server speaks the (unencrypted) protocol; after it the ssh2 library's server does.

const work = scratch("dbts-hostile-srv-");
let userKey = "";

beforeAll(() => {
  userKey = ourKeygen(join(work.dir, "id_ed25519"), "ed25519");
});

afterAll(() => work.cleanup());

/** A one-connection TCP server that feeds each client `serve`; closed after the test. */
async function rawServer(serve: (s: net.Socket) => void): Promise<{ port: number; close: () => void }> {
  const srv = net.createServer((s) => {
    s.on("error", () => undefined);
    serve(s);
  });
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  return { port: (srv.address() as net.AddressInfo).port, close: () => srv.close() };
}

/** dbclient to 127.0.0.1:port running `true`, bounded: a hang shows as status null. */
function dbclient(port: number, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runOurClient(["-y", "-i", userKey, "-p", String(port), ...extra, "u@127.0.0.1", "true"], { timeoutMs: 20_000, env });
}

/** dbclient ended as Dropbear's does on a fatal error: status 1 and a single "exited:" line. */
function expectCleanExit(r: RunResult, reason: RegExp): void {
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/dbclient: Connection to u@127\.0\.0\.1:\d+ exited: .+\n$/);
  expect(r.stderr).toMatch(reason);
  expect(r.stderr).not.toMatch(/Error:|\n\s+at /);
}

/** An unencrypted packet (RFC 4253 §6) of `payload`, padded to a multiple of 8. */
function packet(payload: Buffer): Buffer {
  let pad = 8 - ((payload.length + 5) % 8);
  if (pad < 4) pad += 8;
  const b = Buffer.alloc(5 + payload.length + pad);
  b.writeUInt32BE(1 + payload.length + pad, 0);
  b[4] = pad;
  payload.copy(b, 5);
  return b;
}

const nameList = (s: string): Buffer => {
  const b = Buffer.alloc(4 + s.length);
  b.writeUInt32BE(s.length, 0);
  b.write(s, 4, "latin1");
  return b;
};

/** A server KEXINIT: kex, host key, cipher and MAC lists as given. */
function kexinit(o: { kex?: string; hostkey?: string; cipher?: string; mac?: string } = {}): Buffer {
  const lists = [o.kex ?? "curve25519-sha256", o.hostkey ?? "ssh-ed25519", o.cipher ?? "aes128-ctr", o.cipher ?? "aes128-ctr", o.mac ?? "hmac-sha2-256", o.mac ?? "hmac-sha2-256", "none", "none", "", ""];
  return Buffer.concat([Buffer.from([20]), Buffer.alloc(16, 7), ...lists.map(nameList), Buffer.alloc(5)]);
}

/** A small seeded generator (xorshift32), so a failing mutation run can be given again. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

describe("before the key exchange (a raw TCP server)", () => {
  it("a server that never sends its version line: -I 2 and -M 2 end the session on time", async () => {
    const srv = await rawServer(() => undefined);
    try {
      for (const [flag, reason] of [
        ["-I", "Idle timeout"],
        ["-M", "Max duration reached"],
      ] as const) {
        const t0 = Date.now();
        const r = await dbclient(srv.port, [flag, "2"]);
        // Dropbear checks these only after the version exchange, so it waited (spinning) for ever.
        expect(r.stderr).toMatch(new RegExp(`exited: ${reason}\n$`));
        expect(Date.now() - t0).toBeLessThan(15_000);
      }
    } finally {
      srv.close();
    }
  });

  it("-o ConnectTimeout=1: a server that never sends its version line, one that stops inside the key exchange, and a connect() never answered are left on time", async () => {
    for (const [serve, stage] of [
      [() => undefined, "banner exchange"],
      [(s: net.Socket) => s.write("SSH-2.0-silent\r\n"), "key exchange"],
    ] as const) {
      const srv = await rawServer(serve);
      try {
        const t0 = Date.now();
        const r = await dbclient(srv.port, ["-o", "ConnectTimeout=1"]);
        expect(r.stderr, r.stderr).toMatch(new RegExp(`exited: Connection timed out during ${stage}\n$`));
        expect(r.status).toBe(1);
        expect(Date.now() - t0).toBeLessThan(10_000);
      } finally {
        srv.close();
      }
    }
    // A listener that accepts nothing and whose queue is full: the kernel drops our SYNs, and
    // connect() would wait minutes.
    const full = spawn("/usr/bin/python3", ["-c", "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(30)"]);
    const fillers: net.Socket[] = [];
    try {
      const [line] = (await once(full.stdout, "data")) as [Buffer];
      const port = Number(line.toString().trim());
      for (let i = 0; i < 4; i++) fillers.push(net.connect(port, "127.0.0.1").on("error", () => undefined));
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      const r = await dbclient(port, ["-o", "ConnectTimeout=1"]);
      expect(r.stderr).toMatch(/exited: Connect failed: Connection timed out\n$/);
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      for (const f of fillers) f.destroy();
      full.kill();
    }
  });

  it("-f, ^C before authentication: the background copy ends too, and the foreground dies of SIGINT", async () => {
    const srv = await rawServer(() => undefined);
    const fg = spawn(process.execPath, [OURS.dbclient, "-f", "-N", "-y", "-i", userKey, "-p", String(srv.port), "u@127.0.0.1"], { stdio: "ignore" });
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    let copy = 0;
    try {
      // Polled tightly: a ^C right as the copy starts must be passed on too.
      await expect.poll(() => (copy = childrenOf(fg.pid!)[0] ?? 0), { timeout: 10_000, interval: 1 }).toBeGreaterThan(0);
      // As the terminal's ^C: to the foreground process group, which the detached copy left.
      fg.kill("SIGINT");
      const [code, signal] = (await once(fg, "exit")) as [number | null, NodeJS.Signals | null];
      expect({ code, signal }).toEqual({ code: null, signal: "SIGINT" });
      // C has not forked yet at this point: nothing may stay behind to read the terminal.
      await expect.poll(() => alive(copy), { timeout: 5_000 }).toBe(false);
    } finally {
      fg.kill("SIGKILL");
      if (copy > 0 && alive(copy)) process.kill(copy, "SIGKILL");
      srv.close();
    }
  });

  it("an ident line that never ends, or endless lines without one: 'Remote closed the connection', as Dropbear says", async () => {
    for (const chunk of [Buffer.alloc(65536, 65), Buffer.from("not an ident\r\n".repeat(4000))]) {
      const srv = await rawServer((s) => {
        const flood = (): void => {
          while (!s.destroyed && s.write(chunk));
        };
        s.on("drain", flood);
        flood();
      });
      try {
        expectCleanExit(await dbclient(srv.port), /Remote closed the connection/);
      } finally {
        srv.close();
      }
    }
  });

  it("a version line with a NUL and escape sequences: cut at the NUL as Dropbear's C string is, and shown printable only", async () => {
    const srv = await rawServer((s) => s.end("SSH-1.5-\x1b[31mred\0\x1b]0;title\x07\r\n"));
    try {
      const r = await dbclient(srv.port);
      expectCleanExit(r, /Incompatible remote version 'SSH-1\.5-\[31mred'\n/);
      expect(r.stderr).not.toMatch(/[\x00-\x08\x0b-\x1f]/);
    } finally {
      srv.close();
    }
  });

  it("strict kex (Terrapin): a server's IGNORE before its KEXINIT or inside the exchange ends it; without strict kex both are passed over", async () => {
    const ignore = packet(Buffer.concat([Buffer.from([2]), sshString("x")]));
    const strict = packet(kexinit({ kex: "curve25519-sha256,kex-strict-s-v00@openssh.com" }));
    // What dbclient sends after its version line, by packet type; its KEXDH_INIT ends the talk.
    const heard: number[] = [];
    const serve = (frames: Buffer[]) => (s: net.Socket): void => {
      onClearPackets(s, (type) => {
        heard.push(type);
        if (type === 30) s.destroy();
      });
      s.write(Buffer.concat([Buffer.from("SSH-2.0-x\r\n"), ...frames]));
    };
    for (const [frames, reason] of [
      [[ignore, strict], /First packet wasn't kexinit/],
      [[strict, ignore], /Unexpected packet type 2, expected 31/],
    ] as const) {
      const srv = await rawServer(serve([...frames]));
      try {
        expectCleanExit(await dbclient(srv.port), reason);
      } finally {
        srv.close();
      }
    }
    heard.length = 0;
    const lax = await rawServer(serve([ignore, packet(kexinit()), ignore]));
    try {
      expectCleanExit(await dbclient(lax.port), /Remote closed the connection/);
      expect(heard).toEqual([20, 30]);
    } finally {
      lax.close();
    }
  });

  it("a packet length of 2^32 - 1, and a KEXINIT with no cipher in common", async () => {
    const huge = await rawServer((s) => s.write(Buffer.concat([Buffer.from("SSH-2.0-x\r\n"), Buffer.from([0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 0, 0, 0, 0])])));
    const nocipher = await rawServer((s) => s.write(Buffer.concat([Buffer.from("SSH-2.0-x\r\n"), packet(kexinit({ cipher: "rot13-cbc" }))])));
    try {
      expectCleanExit(await dbclient(huge.port), /Integrity error \(bad packet size/);
      expectCleanExit(await dbclient(nocipher.port), /No matching algo enc c->s/);
    } finally {
      huge.close();
      nocipher.close();
    }
  });

  it("mutated idents, KEXINITs and KEXDH replies, then EOF: every run ends with status 1 and its reason", async () => {
    const SEED = 20261130;
    const rand = rng(SEED);
    const mutate = (b: Buffer): Buffer => {
      const m = Buffer.from(b);
      switch (rand(5)) {
        case 0:
          for (let i = 0; i <= rand(4); i++) m[rand(m.length)] = rand(256);
          return m;
        case 1:
          return m.subarray(0, rand(m.length));
        case 2:
          if (m.length >= 4) m.writeUInt32BE([0xffffffff, 0x7fffffff, 0, rand(70000)][rand(4)]!, rand(m.length - 3));
          return m;
        case 3:
          return Buffer.concat([m, Buffer.alloc(rand(3000), rand(256))]);
        default:
          return m;
      }
    };
    const runs = Array.from({ length: 32 }, () => {
      const which = rand(3);
      const ident = Buffer.from("SSH-2.0-hostile\r\n");
      const reply = packet(Buffer.concat([Buffer.from([31]), Buffer.alloc(rand(400), rand(256))]));
      return which === 0 ? mutate(ident) : which === 1 ? Buffer.concat([ident, mutate(packet(kexinit()))]) : Buffer.concat([ident, packet(kexinit()), mutate(reply)]);
    });
    const results = await Promise.all(
      runs.map(async (bytes, i) => {
        // Started four every 150 ms: the run stays short without starting 32 Node processes at once.
        await new Promise((r) => setTimeout(r, (i >> 2) * 150));
        const srv = await rawServer((s) => {
          s.write(bytes);
          setTimeout(() => s.end(), 200);
        });
        try {
          return await dbclient(srv.port);
        } finally {
          srv.close();
        }
      }),
    );
    results.forEach((r, i) => {
      expect({ run: i, seed: SEED, status: r.status, stderr: r.stderr }).toMatchObject({ status: 1 });
      expect(r.stderr, `run ${i} (seed ${SEED})`).toMatch(/exited: .+\n$/);
      expect(r.stderr, `run ${i} (seed ${SEED})`).not.toMatch(/Error:|\n\s+at /);
    });
  }, 120_000);
});

/** An RSA host key in the PEM form the ssh2 library reads. */
const rsaHostKey = (): string =>
  generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding: { type: "pkcs1", format: "pem" }, publicKeyEncoding: { type: "pkcs1", format: "pem" } }).privateKey;

/** Lines of stdout and of stderr the "interleave" server sends, alternating. */
const INTERLEAVED = 300;

/** Banners of about 2 KB the "banners" server sends before it accepts the login. */
const BANNERS = 1000;

/** What the "drop" server writes before it disconnects: more than a pipe and Node's stream hold. */
const DROP_OUTPUT = Buffer.alloc(1 << 20, "0123456789abcdef");

/** ssh2's protocol object, as far as the tests below reach into it to send what its API never would. */
interface RawProto {
  _packetRW: { write: { allocStart: number; alloc(n: number): Buffer; finalize(p: Buffer): Buffer } };
  _handlers: Record<string, (p: unknown, recipient: number) => void>;
}

const { sendPacket } = createRequire(import.meta.url)("ssh2/lib/protocol/utils.js") as { sendPacket(proto: RawProto, packet: Buffer): void };

/** Send `payload` as one (encrypted) packet of the connection. */
function rawSend(proto: RawProto, payload: Buffer): void {
  const at = proto._packetRW.write.allocStart;
  const packet = proto._packetRW.write.alloc(payload.length);
  payload.copy(packet, at);
  sendPacket(proto, proto._packetRW.write.finalize(packet));
}

describe("after authentication (the ssh2 library's server)", () => {
  let port = 0;
  let mode: "opens" | "prompts" | "again" | "password" | "bigport" | "drop" | "interleave" | "requests" | "signals" | "silent" | "banners" = "opens";
  const passwords: string[] = [];
  let hostKey = "";
  const events: string[] = [];
  /** The "silent" server's connection, which reads nothing more (so it never sees the client go). */
  let silenced: net.Socket | null = null;
  /** When the "drop" server last ended its connection. */
  let droppedAt = 0;
  let srv: ssh2.Server;

  beforeAll(async () => {
    hostKey = rsaHostKey();
    srv = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
      client.on("error", () => undefined);
      client.on("authentication", (ctx) => {
        if (mode === "password") {
          if (ctx.method !== "password") return ctx.reject(["password"]);
          passwords.push(ctx.password);
          return passwords.length < 3 ? ctx.reject(["password"]) : ctx.accept();
        }
        if (mode === "banners") {
          // More banners than a pipe and our stderr's hold take, all before authentication.
          const proto = (client as unknown as { _protocol: RawProto })._protocol;
          for (let i = 0; i < BANNERS; i++) rawSend(proto, Buffer.concat([Buffer.of(53), sshString(`banner ${i} ${"x".repeat(1900)}\n`), sshString("")]));
        }
        if (mode !== "prompts") return ctx.accept();
        if (ctx.method !== "keyboard-interactive") return ctx.reject(["keyboard-interactive"]);
        ctx.prompt(Array.from({ length: 2000 }, (_, i) => ({ prompt: `code ${i}: `, echo: false })), "title", "", () => ctx.accept());
      });
      client.on("ready", () => {
        // A port no int holds, for -R 0: C reads it as negative and takes none.
        client.on("request", (accept, _reject, name) => (name === "tcpip-forward" && mode === "bigport" ? accept?.(0xffffffff) : undefined));
        client.on("session", (accept) => {
          accept().on("exec", (acceptExec, _reject, info) => {
            const ch = acceptExec();
            events.push("exec");
            if (mode === "signals") {
              // exit-signal cut short: of its name ("short"), or after it ("noflag").
              const proto = (client as unknown as { _protocol: RawProto })._protocol;
              const chan = (ch as unknown as { outgoing: { id: number } }).outgoing.id;
              const signal =
                info.command === "short"
                  ? Buffer.concat([u32(4), Buffer.from("TE")])
                  : info.command === "escapes"
                    ? Buffer.concat([sshString("\x1b]0;owned\x07\x1b[2JKILL\r\n\x00X"), Buffer.of(1)])
                    : sshString("TERM");
              rawSend(proto, Buffer.concat([Buffer.of(98), u32(chan), sshString("exit-signal"), Buffer.of(0), signal]));
              if (info.command === "short") ch.exit(3);
              ch.end();
              return;
            }
            if (mode === "password" || mode === "bigport" || mode === "banners") {
              setTimeout(() => {
                ch.write("in\n");
                ch.exit(0);
                ch.end();
              }, mode === "bigport" ? 300 : 0);
              return;
            }
            if (mode === "interleave") {
              // stdout and stderr packets alternating, each in the order ssh2 is given them.
              for (let i = 0; i < INTERLEAVED; i++) {
                ch.write(`O${i}\n`);
                ch.stderr.write(`E${i}\n`);
              }
              ch.exit(0);
              ch.end();
              return;
            }
            if (mode === "requests") {
              // Requests and replies a server may send on the session, some cut short.
              const proto = (client as unknown as { _protocol: RawProto })._protocol;
              const failure = proto._handlers.CHANNEL_FAILURE!;
              proto._handlers.CHANNEL_FAILURE = (p, recipient) => {
                events.push(`failure ${recipient}`);
                failure(p, recipient);
              };
              const chan = (ch as unknown as { outgoing: { id: number } }).outgoing.id;
              const request = (name: string, wantReply: boolean, data: Buffer = Buffer.alloc(0)): void =>
                rawSend(proto, Buffer.concat([Buffer.of(98), u32(chan), sshString(name), Buffer.of(wantReply ? 1 : 0), data]));
              rawSend(proto, Buffer.of(99)); // CHANNEL_SUCCESS with no channel number
              rawSend(proto, Buffer.of(100, 0, 0)); // CHANNEL_FAILURE with half of one
              rawSend(proto, Buffer.concat([Buffer.of(99), u32(77)])); // for a channel that never was
              request("keepalive@openssh.com", true);
              request("eow@openssh.com", false);
              request("exit-status", false, u32(3));
              request("exit-status", true, u32(5)); // the last one counts, and gets no reply
              setTimeout(() => {
                ch.write("still here\n");
                ch.end();
              }, 300);
              return;
            }
            if (mode === "silent") {
              // Output, then nothing more: the server stops reading, so no keepalive is answered.
              const sock = (client as unknown as { _sock: net.Socket })._sock;
              silenced = sock;
              ch.write("go\n", () => sock.pause());
              return;
            }
            if (mode === "drop") {
              // Output, then the connection ends without the channel's EOF or CLOSE.
              ch.write(DROP_OUTPUT, () =>
                setTimeout(() => {
                  droppedAt = Date.now();
                  client.end();
                }, 200),
              );
              return;
            }
            if (mode === "again") {
              // RFC 4252 5.1: sent once. Through ssh2's protocol object, whose API never repeats
              // it (it sends one only for a request it has queued).
              const proto = (client as unknown as { _protocol: { _authsQueue: string[]; authSuccess(): void } })._protocol;
              proto._authsQueue.push("none");
              proto.authSuccess();
              setTimeout(() => {
                ch.write("once\n");
                ch.exit(0);
                ch.end();
              }, 300);
              return;
            }
            // What no client asked for: a remote-forwarded connection, an X11 channel, the agent
            // (no -A), and channels only a server takes; each refused with its RFC 4254 reason.
            const opened = (type: string) => (err: (Error & { reason?: number }) | undefined) => events.push(`${type} ${err ? `refused ${err.reason}` : "opened"}`);
            client.forwardOut("127.0.0.1", 9, "127.0.0.1", 5555, opened("forwarded-tcpip"));
            client.x11("127.0.0.1", 6000, opened("x11"));
            const proto = (client as unknown as { _protocol: RawProto })._protocol;
            const chanMgr = (client as unknown as { _chanMgr: { add(cb: unknown): number } })._chanMgr;
            const open = (type: string, extra: Buffer): void => {
              const cb = Object.assign(opened(type), { type });
              rawSend(proto, Buffer.concat([Buffer.of(90), sshString(type), u32(chanMgr.add(cb)), u32(65536), u32(32768), extra]));
            };
            open("auth-agent@openssh.com", Buffer.alloc(0));
            open("session", Buffer.alloc(0));
            open("direct-tcpip", Buffer.concat([sshString("127.0.0.1"), u32(22), sshString("127.0.0.1"), u32(5)]));
            setTimeout(() => {
              ch.write("still here\n");
              ch.exit(0);
              ch.end();
            }, 300);
          });
        });
      });
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    port = (srv.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => srv.close(() => r()));
  });

  /** dbclient against the server acting as `m`: status 0 and `stdout`. */
  async function commandRuns(m: typeof mode, stdout: string, env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
    mode = m;
    events.length = 0;
    const r = await dbclient(port, [], env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(stdout);
    return r;
  }

  it("unrequested channels are refused with their reasons, the agent not reached without -A, and the command still runs", async () => {
    // An agent the server must not reach: any connection to it is a leak.
    let agentConnections = 0;
    const agent = net.createServer((s) => {
      agentConnections++;
      s.destroy();
    });
    const agentSock = join(work.dir, "agent.sock");
    agent.listen(agentSock);
    await once(agent, "listening");
    try {
      const r = await commandRuns("opens", "still here\n", { SSH_AUTH_SOCK: agentSock });
      expect(r.stderr).toMatch(/Server sent unrequested forward from "127\.0\.0\.1:9"/);
      // 1 administratively prohibited (as Dropbear: no such -R, no -A), 3 unknown channel type.
      expect(events.sort()).toEqual(["auth-agent@openssh.com refused 1", "direct-tcpip refused 3", "exec", "forwarded-tcpip refused 1", "session refused 3", "x11 refused 3"]);
      expect(agentConnections).toBe(0);
    } finally {
      agent.close();
    }
  });

  it("channel requests and replies a server sends: keepalive refused, exit-status's last kept, replies cut short ignored as C ignores every reply", async () => {
    // C's ignore_recv_response reads nothing of a CHANNEL_SUCCESS or FAILURE; reading its channel
    // number ended the session ("Bad buf_getptr") on a reply without one.
    mode = "requests";
    events.length = 0;
    const r = await dbclient(port);
    expect(r.stderr).not.toMatch(/exited|Error:|\n\s+at /);
    expect(r.stdout).toBe("still here\n");
    expect(r.status, r.stderr).toBe(5);
    // One FAILURE, for the keepalive (on the server's channel 0): none for eow or exit-status.
    expect(events).toEqual(["exec", "failure 0"]);
  });

  it("the library's client: an exit-signal cut short is ignored as dbclient ignores it, or read without its core-dumped flag; its name cleaned of control characters", async () => {
    mode = "signals";
    const client = await connect({ host: "127.0.0.1", port, username: "u", privateKeyPath: userKey, hostKey: false });
    try {
      // Before, reading past the packet ended the whole session ("Bad buf_getptr", "Bad buf_getbyte").
      expect(await client.exec("short").exit).toEqual({ code: 3 });
      expect(await client.exec("noflag").exit).toEqual({ signal: "TERM", coreDumped: false });
      // Its name as printable ASCII only, up to a NUL (cleantext): callers print it.
      expect(await client.exec("escapes").exit).toEqual({ signal: "]0;owned[2JKILL", coreDumped: true });
    } finally {
      await client.end();
    }
  });

  it("a server gone silent with -K 1 -I 3: both fall due in the same second, and Keepalive timeout (status 1) wins, as in C", async () => {
    mode = "silent";
    const r = await dbclient(port, ["-K", "1", "-I", "3"]);
    // C's checktimeouts looks at the keepalives before the idle time: "Idle timeout" would be status 0.
    silenced?.destroy();
    expectCleanExit(r, /exited: Keepalive timeout\n$/);
    expect(r.stdout).toBe("go\n");
  });

  it("-o ServerAliveCountMax=0: a silent server is left after one ServerAliveInterval, as ssh leaves it (C's limit is three)", async () => {
    mode = "silent";
    const t0 = Date.now();
    const r = await dbclient(port, ["-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=0"]);
    silenced?.destroy();
    expectCleanExit(r, /exited: Keepalive timeout\n$/);
    // Three intervals would be 6 s of silence after the command's output.
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it("a second USERAUTH_SUCCESS mid-session is ignored: the command is not sent again", async () => {
    const r = await commandRuns("again", "once\n");
    expect(r.stderr).not.toMatch(/Error:|\n\s+at /);
    expect(events).toEqual(["exec"]);
  });

  it("a server that disconnects after its output: the output a slow reader had not taken yet still reaches it", async () => {
    mode = "drop";
    const child = spawn(process.execPath, [OURS.dbclient, "-y", "-i", userKey, "-p", String(port), "u@127.0.0.1", "true"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // Nothing read for a second: dbclient's stdout blocks and the rest waits in the channel's ring.
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 1000));
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stdout.resume();
    // "close", not "exit": stdout may still hold data when the process has exited.
    const [status] = (await once(child, "close")) as [number | null];
    expect(stderr).toMatch(/exited: Disconnect received/);
    // dropbear_close, as C's recv_msg_disconnect ends it.
    expect(status).toBe(0);
    expect(Buffer.concat(chunks).equals(DROP_OUTPUT)).toBe(true);
  });

  it("a server that disconnects while stdout's reader has stopped: dbclient waits for that output 2 s in all, not twice, and leaves the pipe blocking", async () => {
    mode = "drop";
    droppedAt = 0;
    // grep's fd 1 is the file description dbclient's stdout was: blocking again, as C leaves it,
    // though dbclient gave up on what it still held for it.
    const script = `"$@"; echo "status $?" >&2; grep '^flags' /proc/self/fdinfo/1`;
    const child = spawn("/bin/sh", ["-c", script, "sh", process.execPath, OURS.dbclient, "-y", "-i", userKey, "-p", String(port), "u@127.0.0.1", "true"], { stdio: ["ignore", "pipe", "pipe"] });
    const closed = once(child, "close");
    let stderr = "";
    let waited = -1;
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (waited < 0 && stderr.includes("status ")) waited = Date.now() - droppedAt;
    });
    // A 'data' listener from the start, or Node drops what the pipe holds as sh exits.
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stdout.pause();
    // The flush of the streams and the wait for what their close left owed share EXIT_FLUSH_MS.
    await vi.waitFor(() => expect(waited).toBeGreaterThanOrEqual(0), { timeout: 15_000, interval: 50 });
    child.stdout.resume();
    const [status] = (await closed) as [number | null];
    expect(stderr).toMatch(/exited: Disconnect received[^]*status 0/);
    expect(droppedAt).toBeGreaterThan(0);
    expect(waited).toBeGreaterThanOrEqual(1900);
    expect(waited).toBeLessThan(3300);
    expect(status).toBe(0);
    const flags = /flags:\s*([0-7]+)\n$/.exec(Buffer.concat(chunks).toString("latin1"));
    expect(flags).not.toBeNull();
    expect(Number.parseInt(flags![1]!, 8) & 0o4000).toBe(0); // O_NONBLOCK
  });

  it("stdout and stderr on one pipe (2>&1) keep the order the server sent them in, as C's writes at once do", async () => {
    mode = "interleave";
    // A kernel pipe to cat, which takes the lines as they come: a reader that falls behind
    // would hold both outputs back, and then neither C nor we could keep their order.
    const child = spawn("/bin/sh", ["-c", '{ "$0" "$@"; echo "status $?"; } 2>&1 | cat', process.execPath, OURS.dbclient, "-y", "-i", userKey, "-p", String(port), "u@127.0.0.1", "true"], { stdio: ["ignore", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    await once(child, "close");
    expect(Buffer.concat(chunks).toString()).toMatch(/status 0\n$/);
    const lines = Buffer.concat(chunks).toString().split("\n").filter((l) => /^[OE]\d+$/.test(l));
    expect(lines).toEqual(Array.from({ length: INTERLEAVED }, (_, i) => [`O${i}`, `E${i}`]).flat());
  });

  it("stdout and stderr on one terminal keep the server's order too (script(1)'s pty)", async () => {
    mode = "interleave";
    const cmdline = [process.execPath, OURS.dbclient, "-y", "-i", userKey, "-p", String(port), "u@127.0.0.1", "true"].map((a) => `'${a}'`).join(" ");
    const child = spawn("/usr/bin/script", ["-qec", `${cmdline} </dev/null`, "/dev/null"], { stdio: ["ignore", "pipe", "inherit"] });
    const chunks: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    const [status] = (await once(child, "close")) as [number | null];
    expect(status).toBe(0);
    const lines = Buffer.concat(chunks).toString().split(/\r?\n/).filter((l) => /^[OE]\d+$/.test(l));
    expect(lines).toEqual(Array.from({ length: INTERLEAVED }, (_, i) => [`O${i}`, `E${i}`]).flat());
  });

  it("banners while stderr's reader has stopped: dbclient waits for it, as C's fprintf does, rather than queue them all and lose them at its exit", async () => {
    mode = "banners";
    const child = spawn(process.execPath, [OURS.dbclient, "-y", "-i", userKey, "-p", String(port), "u@127.0.0.1", "true"], { stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => stdout.push(d));
    // Nothing read from stderr for 4 s: before, dbclient had taken every banner into memory
    // (as many as a server sends) and exited with them unwritten after its 2 s wait.
    child.stderr.pause();
    let alive = true;
    child.on("exit", () => (alive = false));
    await new Promise((r) => setTimeout(r, 4000));
    expect(alive).toBe(true);
    const chunks: Buffer[] = [];
    child.stderr.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.resume();
    const [status] = (await once(child, "close")) as [number | null];
    expect(status).toBe(0);
    expect(Buffer.concat(stdout).toString()).toBe("in\n");
    const banners = Buffer.concat(chunks).toString().split("\n").filter((l) => /^banner \d+ x+$/.test(l));
    expect(banners.length).toBe(BANNERS);
  }, 30_000);

  it("DROPBEAR_PASSWORD goes once: a server asking again gets an empty password, as C burns the variable", async () => {
    mode = "password";
    passwords.length = 0;
    const r = await runOurClient(["-y", "-p", String(port), "u@127.0.0.1", "true"], { env: { DROPBEAR_PASSWORD: "pw" }, timeoutMs: 20_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(passwords).toEqual(["pw", "", ""]);
  });

  it("-R 0 answered with port 2^32 - 1: not taken, nothing printed (an int in C)", async () => {
    mode = "bigport";
    const r = await dbclient(port, ["-R", "0:127.0.0.1:9"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("in\n");
    expect(r.stderr).not.toMatch(/Allocated port/);
  });

  it("2000 keyboard-interactive prompts: 'Too many prompts', as Dropbear says", async () => {
    mode = "prompts";
    expectCleanExit(await dbclient(port), /Too many prompts received for keyboard-interactive/);
  });

  it("a rekey that brings another host key: 'Host key changed during rekey', as OpenSSH refuses it", async () => {
    const other = ssh2.utils.parseKey(rsaHostKey());
    if (other instanceof Error) throw other;
    const swapping = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
      client.on("error", () => undefined);
      client.on("authentication", (ctx) => ctx.accept());
      client.on("ready", () => {
        client.on("session", (accept) => {
          accept().on("exec", (acceptExec) => {
            const ch = acceptExec();
            // ssh2 signs each exchange with the key its protocol object holds for the
            // negotiated algorithm: swap every entry, then start a rekey.
            const keys = (client as unknown as { _protocol: { _hostKeys: Record<string, unknown> } })._protocol._hostKeys;
            for (const k of Object.keys(keys)) keys[k] = other;
            client.rekey();
            setTimeout(() => {
              ch.write("after rekey\n");
              ch.exit(0);
              ch.end();
            }, 500);
          });
        });
      });
    });
    swapping.listen(0, "127.0.0.1");
    await once(swapping, "listening");
    try {
      const r = await dbclient((swapping.address() as net.AddressInfo).port);
      expectCleanExit(r, /Host key changed during rekey/);
      expect(r.stdout).toBe("");
    } finally {
      await new Promise<void>((r) => swapping.close(() => r()));
    }
  });

  it("a banner in a packet over the size limit: an integrity error, not a hang", async () => {
    const big = new ssh2.Server({ hostKeys: [hostKey], banner: `${"B".repeat(200_000)}\n` }, (client) => {
      client.on("error", () => undefined);
      client.on("authentication", (ctx) => ctx.accept());
    });
    big.listen(0, "127.0.0.1");
    await once(big, "listening");
    try {
      expectCleanExit(await dbclient((big.address() as net.AddressInfo).port), /Integrity error \(bad packet size/);
    } finally {
      await new Promise<void>((r) => big.close(() => r()));
    }
  });
});
