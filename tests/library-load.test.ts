import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import * as net from "node:net";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, createServer, SshError, type Client, type ConnectOptions, type Server, type ServerOptions, type ServerSession } from "dropbear-ts";
import { ourKeygen, scratch } from "./helpers/servers.js";
import { seededPayload } from "./helpers/tunnel.js";

// The library under load, as an embedder drives it (docs/library.md): many sessions and channels
// at once in one process, handlers and readers that stop, a server that dies mid-transfer or is
// closed with sessions busy. Back pressure must hold what is written when nobody reads (bounded
// by the channel windows, not growing in our process), every byte arrives in order, every promise
// settles with its code, and nothing stays open afterwards.

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const work = scratch("dbts-libload-");
const hostKey = join(work.dir, "host_ed25519");
const key = join(work.dir, "id_ed25519");
const servers: Server[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);

beforeAll(() => {
  ourKeygen(hostKey, "ed25519");
  ourKeygen(key, "ed25519");
  process.on("unhandledRejection", onUnhandled);
}, 60_000);

afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await Promise.all(servers.map((s) => s.close()));
  work.cleanup();
});

/** A library server on a loopback port; closed after the file's tests. */
async function serve(options: Partial<ServerOptions>): Promise<{ server: Server; base: ConnectOptions }> {
  const server = createServer({ hostKeys: [hostKey], authenticate: () => true, ...options });
  servers.push(server);
  const { port } = await server.listen(0);
  // curve25519: the cheapest kex, so that many connections cost the loaded machine little.
  return { server, base: { host: "127.0.0.1", port, username: "me", privateKeyPath: key, hostKey: false, kex: ["curve25519-sha256"] } };
}

/** The process's open handles by type; timers left out (vitest's own come and go). */
function handles(): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) if (r !== "Timeout") m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/** Once libuv has closed what was closed (its close phase comes after the check phase). */
const handlesGone = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A handler that writes 64 KiB chunks for ever, waiting for 'drain' as it should; counts what write() took. */
function flood(taken: { bytes: number }): (s: ServerSession) => void {
  return (s) => {
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    const pump = (): void => {
      while (!s.stdout.destroyed) {
        taken.bytes += chunk.length;
        if (!s.stdout.write(chunk)) {
          s.stdout.once("drain", pump);
          return;
        }
      }
    };
    pump();
  };
}

/** Wait until `value()` has not changed for `quietMs` (at most `maxMs`); its last value. */
async function settled(value: () => number, quietMs: number, maxMs: number): Promise<number> {
  const start = Date.now();
  let last = value();
  let since = Date.now();
  while (Date.now() - start < maxMs) {
    await sleep(100);
    const v = value();
    if (v !== last) {
      last = v;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      break;
    }
  }
  return last;
}

describe("back pressure", () => {
  it("holds a handler writing for ever into sessions whose clients do not read, and lets it go on once they do", async () => {
    const taken = { bytes: 0 };
    const { base } = await serve({ onSession: { exec: flood(taken) } });
    const clients: Client[] = await Promise.all(Array.from({ length: 10 }, () => connect(base)));
    const channels = clients.map((c) => {
      const ch = c.exec("flood");
      ch.stdout.pause();
      ch.stderr.resume();
      ch.exit.catch(() => {});
      return ch;
    });
    const rssBefore = process.memoryUsage().rss;
    // Writes stop once each channel's window and the pipes' buffers are full: a few MiB per
    // session. Unheld, the handlers would take gigabytes and never stop.
    const held = await settled(() => taken.bytes, 800, 15_000);
    expect(held).toBeLessThan(10 * 16 * 1024 * 1024);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * 1024 * 1024);
    // Reading again: 'drain' comes and the handlers go on.
    for (const ch of channels) ch.stdout.resume();
    const t0 = Date.now();
    while (taken.bytes < held + 16 * 1024 * 1024 && Date.now() - t0 < 15_000) await sleep(50);
    expect(taken.bytes).toBeGreaterThanOrEqual(held + 16 * 1024 * 1024);
    await Promise.all(clients.map((c) => c.end()));
  });
});

describe("many channels on one connection", () => {
  it("50 commands and 100 tunnelled connections at once, slow readers among them: every byte in order", async () => {
    const SIZE = 256 * 1024;
    const { base } = await serve({
      onSession: {
        exec: (s) => {
          const data = seededPayload(Number(s.command), SIZE);
          let off = 0;
          const pump = (): void => {
            while (off < SIZE) {
              const n = Math.min(1000 + (off % 9000), SIZE - off);
              off += n;
              if (!s.stdout.write(data.subarray(off - n, off))) {
                s.stdout.once("drain", pump);
                return;
              }
            }
            s.exit(0);
          };
          pump();
        },
      },
      onDirectTcpip: () => true,
    });
    const before = handles();
    const echo = net.createServer((s) => {
      s.on("error", () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const echoPort = (echo.address() as net.AddressInfo).port;
    const c = await connect(base);
    const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

    const commands = Array.from({ length: 50 }, async (_, i) => {
      const ch = c.exec(String(i));
      ch.stdin.end();
      ch.stderr.resume();
      const parts: Buffer[] = [];
      ch.stdout.on("data", (d: Buffer) => {
        parts.push(d);
        // Every third reader is slow: it stops after each chunk for a moment.
        if (i % 3 === 0) {
          ch.stdout.pause();
          setTimeout(() => ch.stdout.resume(), 2);
        }
      });
      const [x] = await Promise.all([ch.exit, once(ch.stdout, "end")]);
      return "code" in x && x.code === 0 && sha(Buffer.concat(parts)) === sha(seededPayload(i, SIZE));
    });

    const local = await c.forwardLocal({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: echoPort });
    const tunnels = Array.from({ length: 100 }, (_, i) =>
      new Promise<boolean>((resolve) => {
        const data = seededPayload(1000 + i, 64 * 1024);
        const s = net.connect(local.port, "127.0.0.1");
        const parts: Buffer[] = [];
        s.on("error", () => resolve(false));
        s.on("data", (d: Buffer) => parts.push(d));
        s.on("end", () => resolve(Buffer.concat(parts).equals(data)));
        s.end(data);
      }),
    );

    const outs = Array.from({ length: 10 }, async (_, i) => {
      const d = await c.forwardOut("127.0.0.1", 1, "127.0.0.1", echoPort);
      const data = seededPayload(2000 + i, 128 * 1024);
      const parts: Buffer[] = [];
      d.on("data", (x: Buffer) => parts.push(x));
      Readable.from([data]).pipe(d);
      await once(d, "end");
      return Buffer.concat(parts).equals(data);
    });

    expect(await Promise.all(commands)).toEqual(Array(50).fill(true));
    expect(await Promise.all(tunnels)).toEqual(Array(100).fill(true));
    expect(await Promise.all(outs)).toEqual(Array(10).fill(true));
    await c.end();
    await handlesGone();
    await new Promise<void>((r) => echo.close(() => r()));
    await handlesGone();
    expect(handles()).toEqual(before);
  });
});

describe("failures under load", () => {
  it("a server killed in the middle of heavy traffic settles every promise with ECLOSED, leaving nothing unhandled or open", async () => {
    // The server in a process of its own, to be killed.
    const code = `
      import { createServer } from "dropbear-ts";
      const [hostKey] = process.argv.slice(1);
      const server = createServer({
        hostKeys: [hostKey],
        authenticate: () => true,
        onSession: { exec: (s) => {
          if (s.command === "wait") return;
          const chunk = Buffer.alloc(65536, 1);
          const pump = () => { while (!s.stdout.destroyed && s.stdout.write(chunk)) {} if (!s.stdout.destroyed) s.stdout.once("drain", pump); };
          pump();
        } },
        onDirectTcpip: () => true,
      });
      const { port } = await server.listen(0);
      console.log(port);`;
    const before = handles();
    const child = spawn(process.execPath, ["--input-type=module", "-e", code, hostKey], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
    const childGone = once(child, "close");
    try {
      const [line] = (await once(child.stdout, "data")) as [Buffer];
      const sink = net.createServer((s) => {
        s.on("error", () => {});
        s.resume();
      });
      await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
      const sinkPort = (sink.address() as net.AddressInfo).port;
      const c = await connect({ host: "127.0.0.1", port: Number(line.toString()), username: "me", privateKeyPath: key, hostKey: false, kex: ["curve25519-sha256"] });
      const events: string[] = [];
      c.on("error", (e: SshError) => events.push(`error ${e.code}`));
      c.on("close", (e: SshError | null) => events.push(`close ${e?.code ?? "null"}`));
      const settled: Promise<string>[] = [];
      const outcome = (p: Promise<unknown>): void => void settled.push(p.then(() => "resolved", (e: unknown) => (e instanceof SshError ? e.code : String(e))));
      for (let i = 0; i < 30; i++) {
        const ch = c.exec(i % 3 === 0 ? "wait" : "flood");
        ch.stdout.resume();
        ch.stderr.resume();
        // Uploading too: stdin writes waiting for the window when the server dies.
        Readable.from([Buffer.alloc(4 * 1024 * 1024)]).pipe(ch.stdin);
        outcome(ch.exit);
      }
      const local = await c.forwardLocal({ listenHost: "127.0.0.1", listenPort: 0, host: "127.0.0.1", port: sinkPort });
      const sockets = Array.from({ length: 20 }, () => {
        const s = net.connect(local.port, "127.0.0.1");
        s.on("error", () => {});
        s.write(Buffer.alloc(1024 * 1024));
        return s;
      });
      await sleep(500);
      child.kill("SIGKILL");
      // Asked for as it dies, and after.
      outcome(c.forwardOut("127.0.0.1", 1, "127.0.0.1", sinkPort));
      const results = await Promise.all(settled);
      expect(results).toEqual(Array(31).fill("ECLOSED"));
      await expect(c.forwardOut("127.0.0.1", 1, "127.0.0.1", sinkPort)).rejects.toMatchObject({ code: "ECLOSED" });
      expect(() => c.exec("late")).toThrow(SshError);
      await c.end();
      expect(events).toEqual(["error ECLOSED", "close ECLOSED"]);
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => sink.close(() => r()));
      // The killed child's handles go once Node has reaped it.
      await childGone;
      await handlesGone();
      expect(handles()).toEqual(before);
      expect(unhandled).toEqual([]);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });

  it("close() with sessions busy ends them: handlers hear onClose, their writes fail without an 'error', clients get ECLOSED; nothing stays open", async () => {
    const taken = { bytes: 0 };
    const sessions: ServerSession[] = [];
    let closedHeard = 0;
    let errorEvents = 0;
    const write = flood(taken);
    const before = handles();
    const { server, base } = await serve({
      onSession: {
        exec: (s) => {
          sessions.push(s);
          s.onClose = () => void closedHeard++;
          s.stdout.on("error", () => void errorEvents++);
          write(s);
        },
      },
    });
    const clients = await Promise.all(Array.from({ length: 20 }, () => connect(base)));
    const exits = clients.map((c, i) => {
      c.on("error", () => {});
      const ch = c.exec("flood");
      // Half read, half do not: the server's close must not wait for ever on those.
      if (i % 2 === 0) ch.stdout.resume();
      ch.stderr.resume();
      return ch.exit.then(
        () => "resolved",
        (e: unknown) => (e instanceof SshError ? e.code : String(e)),
      );
    });
    while (sessions.length < 20) await sleep(20);
    await sleep(300);
    const t0 = Date.now();
    await server.close();
    // Within the 5 s the docs give a client that does not read the session's last bytes.
    expect(Date.now() - t0).toBeLessThan(6000);
    expect(server.connections).toBe(0);
    expect(closedHeard).toBe(20);
    const late: (Error | null | undefined)[] = [];
    expect(sessions[0]!.stdout.write("late", (e) => late.push(e))).toBe(false);
    expect(await Promise.all(exits)).toEqual(Array(20).fill("ECLOSED"));
    await Promise.all(clients.map((c) => c.end()));
    await handlesGone();
    expect(late).toHaveLength(1);
    expect(late[0]).toBeInstanceOf(Error);
    expect(errorEvents).toBe(0);
    expect(handles()).toEqual(before);
  });
});

describe("channels that are never opened", () => {
  it("past 1000 channels at once, or with end() called before the open went out: stdout and stderr end, stdin's writes fail, ECHANNEL blames no server", async () => {
    const { base } = await serve({ onSession: { exec: () => {} } });
    const c = await connect(base);
    const open = Array.from({ length: 1000 }, () => {
      const ch = c.exec("wait");
      ch.exit.catch(() => {});
      return ch;
    });
    // Dropbear's MAX_CHANNELS: the 1001st is refused by our side before anything is sent.
    const over = c.exec("one too many");
    over.stdout.resume();
    over.stderr.resume();
    const e = await over.exit.then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(SshError);
    expect((e as SshError).code).toBe("ECHANNEL");
    expect((e as SshError).message).toBe("Channel open failed: too many channels (at most 1000 at once)");
    // Its streams close as a refused channel's do: a pipeline through them must not wait for ever.
    await Promise.all([once(over.stdout, "end"), once(over.stderr, "end")]);
    const written = await new Promise<Error | null | undefined>((r) => over.stdin.write("x", r));
    expect(written).toBeInstanceOf(Error);
    await expect(c.forwardOut("127.0.0.1", 1, "127.0.0.1", 9)).rejects.toMatchObject({ code: "ECHANNEL", message: expect.stringMatching(/^Channel open failed: too many channels/) });
    expect(open.every((ch) => !ch.stdout.readableEnded)).toBe(true);
    await c.end();

    // Asked for, then end() at once: the open never went out.
    const c2 = await connect(base);
    const late = c2.exec("late");
    late.stdout.resume();
    late.stderr.resume();
    const ended = c2.end();
    await expect(late.exit).rejects.toMatchObject({ code: "ECLOSED" });
    await Promise.all([once(late.stdout, "end"), once(late.stderr, "end"), ended]);
    expect(late.stdin.destroyed).toBe(true);
  });
});
