import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { createReadStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DropbearExit, Queue, libcFunc, list_append, list_new, type m_list } from "@dropbear-ts/dbutil";
import { DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { type Fd, StreamFd } from "../src/fd.js";
import {
  cancel_connect,
  connect_remote,
  connect_set_writequeue,
  connect_streamlocal,
  dropbear_listen,
  dropbear_prio,
  dropbear_progress_connection,
  get_sock_port,
  get_socket_address,
  getaddrstring,
  handle_connect_fds,
  hostPortString,
  remove_connect_pending,
  servicePort,
  set_connect_fds,
  set_listen_fast_open,
  set_sock_priority,
  warm_listen_lookup,
} from "../src/netio.js";
import { tcpPair, unusedPort } from "../../../tests/helpers/sockets.js";

const cleanups: Array<() => void> = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** A loopback server on 127.0.0.1 that records what it accepts; closed after the test. */
async function server(): Promise<{ port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const srv = net.createServer((s) => accepted.push(s));
  srv.listen(0, "127.0.0.1");
  await once(srv, "listening");
  cleanups.push(() => {
    for (const s of accepted) s.destroy();
    srv.close();
  });
  return { port: (srv.address() as net.AddressInfo).port, accepted };
}

/** Wait, as select() would, until an Fd in `fds` is writable; leave only the writable ones. */
async function selectWrite(fds: Set<Fd>): Promise<void> {
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if ([...fds].some((f) => f.writeReady())) {
        for (const f of fds) f.removeWaiter(check);
        resolve();
      }
    };
    for (const f of fds) f.addWaiter(check);
    check();
  });
  for (const f of [...fds]) {
    if (!f.writeReady()) fds.delete(f);
  }
}

/** The session loop's part for pending connections, turned until none is left (bounded). */
async function runConnects(pending: m_list<dropbear_progress_connection>): Promise<void> {
  for (let turn = 0; turn < 50 && pending.first !== null; turn++) {
    const writefd = new Set<Fd>();
    set_connect_fds(pending, writefd);
    if (writefd.size > 0) {
      await selectWrite(writefd);
      handle_connect_fds(pending, writefd, false);
    }
  }
  expect(pending.first).toBeNull();
}

interface Outcome {
  result: number;
  sock: StreamFd | null;
  errstring: string | null;
}

/** A connect callback that records each call, closing what it is given after the test. */
function recorder(): { calls: Outcome[]; cb: (result: number, sock: StreamFd | null, errstring: string | null) => void } {
  const calls: Outcome[] = [];
  return {
    calls,
    cb: (result, sock, errstring) => {
      calls.push({ result, sock, errstring });
      if (sock !== null) cleanups.push(() => sock.close());
    },
  };
}

const NORMAL = dropbear_prio.DROPBEAR_PRIO_NORMAL;

describe("connect_remote", () => {
  it("connects to a listening port and hands the socket to the callback once", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, null, null, NORMAL);
    // The callback never runs from connect_remote itself, only from the loop.
    expect(r.calls).toEqual([]);
    await runConnects(pending);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.result).toBe(DROPBEAR_SUCCESS);
    expect(r.calls[0]!.errstring).toBeNull();
    const sock = r.calls[0]!.sock!.stream as net.Socket;
    expect(sock.remotePort).toBe(srv.port);
    await expect.poll(() => srv.accepted.length).toBe(1);
    expect(srv.accepted[0]!.remotePort).toBe(sock.localPort);
  });

  it("takes \"*\" as glibc's getaddrinfo does, as no name: loopback", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_remote(pending, "*", String(srv.port), r.cb, null, null, NORMAL);
    // getaddrinfo gives ::1 first; the server is on 127.0.0.1 alone, so that one is refused.
    await runConnects(pending);
    expect(r.calls.map((c) => [c.result, c.errstring])).toEqual([[DROPBEAR_SUCCESS, null]]);
    expect((r.calls[0]!.sock!.stream as net.Socket).remoteAddress).toBe("127.0.0.1");
  });

  it("reports a refused connection with the C library's text", async () => {
    const port = await unusedPort();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_remote(pending, "127.0.0.1", String(port), r.cb, null, null, NORMAL);
    await runConnects(pending);
    expect(r.calls).toEqual([{ result: DROPBEAR_FAILURE, sock: null, errstring: "Connection refused" }]);
  });

  it("fails a port getaddrinfo would refuse before any select", () => {
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_remote(pending, "127.0.0.1", "99999", r.cb, null, null, NORMAL);
    set_connect_fds(pending, new Set());
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.result).toBe(DROPBEAR_FAILURE);
    expect(r.calls[0]!.errstring).toMatch(/^Error resolving '127\.0\.0\.1' port '99999'/);
    expect(pending.first).toBeNull();
  });

  it("fails an empty host name as getaddrinfo does (EAI_NONAME), with no lookup and no Node warning", () => {
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    const warnings: Error[] = [];
    const onWarning = (w: Error): number => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const c = connect_remote(pending, "", "22", r.cb, null, null, NORMAL);
      expect(c.lookup).toBeNull();
      set_connect_fds(pending, new Set());
    } finally {
      process.off("warning", onWarning);
    }
    expect(r.calls).toEqual([{ result: DROPBEAR_FAILURE, sock: null, errstring: "Error resolving '' port '22'. Name or service not known" }]);
    expect(warnings).toEqual([]);
  });

  it("refuses an IPv6 zone getaddrinfo refuses, with its words, and connects with one it takes", async () => {
    // glibc takes an interface name as the zone only on a link-local (or local multicast)
    // address, and an interface index on any; Node's isIP takes every zone, so `::1%lo` was
    // connected and `fe80::1%nosuch` failed at connect ("Invalid argument").
    const port = await unusedPort();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    for (const host of ["::1%lo", "fe80::1%dbts-nosuch", "fe80::1%4294967296"]) {
      connect_remote(pending, host, String(port), r.cb, null, null, NORMAL);
    }
    connect_remote(pending, "127.0.0.1", String(port), r.cb, "::1%lo", "0", NORMAL);
    await runConnects(pending);
    expect(r.calls.map((c) => c.errstring)).toEqual([
      `Error resolving '::1%lo' port '${port}'. Name or service not known`,
      `Error resolving 'fe80::1%dbts-nosuch' port '${port}'. Name or service not known`,
      `Error resolving 'fe80::1%4294967296' port '${port}'. Name or service not known`,
      "Error resolving bind address '::1%lo' (port 0). Name or service not known",
    ]);

    const srv = net.createServer((s) => s.destroy());
    srv.listen(0, "::1");
    await once(srv, "listening");
    cleanups.push(() => srv.close());
    const lo = readFileSync("/sys/class/net/lo/ifindex", "utf8").trim();
    const ok = recorder();
    connect_remote(pending, `::1%${lo}`, String((srv.address() as net.AddressInfo).port), ok.cb, null, null, NORMAL);
    await runConnects(pending);
    expect(ok.calls.map((c) => [c.result, c.errstring])).toEqual([[DROPBEAR_SUCCESS, null]]);
  });

  it("binds the local end to bind_address when asked", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, "127.0.0.1", null, NORMAL);
    await runConnects(pending);
    expect(r.calls[0]!.result).toBe(DROPBEAR_SUCCESS);
    expect((r.calls[0]!.sock!.stream as net.Socket).localAddress).toBe("127.0.0.1");
  });

  it("resolves a bind_address given by name and binds one of the remote address's family, as getaddrinfo does", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, "localhost", "0", NORMAL);
    await runConnects(pending);
    expect(r.calls[0]!.result).toBe(DROPBEAR_SUCCESS);
    expect((r.calls[0]!.sock!.stream as net.Socket).localAddress).toBe("127.0.0.1");
  });

  it("fails a bind port getaddrinfo would refuse, and a bind address of no address of the remote's family", async () => {
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    for (const port of ["abc", "65536"]) {
      connect_remote(pending, "127.0.0.1", "22", r.cb, null, port, NORMAL);
    }
    set_connect_fds(pending, new Set());
    expect(r.calls.map((c) => c.errstring)).toEqual([
      "Error resolving bind address '(null)' (port abc). Servname not supported for ai_socktype",
      "Error resolving bind address '(null)' (port 65536). Servname not supported for ai_socktype",
    ]);
    connect_remote(pending, "127.0.0.1", "22", r.cb, "::1", null, NORMAL);
    set_connect_fds(pending, new Set());
    expect(r.calls[2]).toEqual({ result: DROPBEAR_FAILURE, sock: null, errstring: "Error resolving bind address '::1' (port (null)). Address family for hostname not supported" });
  });
});

describe("connect_try_next", () => {
  /** A pending connection over given addresses, as connect_remote leaves it once resolved. */
  function resolved(pending: m_list<dropbear_progress_connection>, addrs: string[], port: number, cb: ReturnType<typeof recorder>["cb"]): dropbear_progress_connection {
    const c = new dropbear_progress_connection("testhost", String(port), cb, null, null, NORMAL);
    c.res = addrs;
    list_append(pending, c);
    return c;
  }

  it("looks names up one at a time per session, as C's blocking getaddrinfo does, and not for a dropped connection", async () => {
    // dns.lookup's requests, as Node lists them while they run on libuv's pool.
    const lookups = (): number => process.getActiveResourcesInfo().filter((r) => r === "GetAddrInfoReqWrap").length;
    const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
    const srv = await server();
    const a = list_new<dropbear_progress_connection>();
    const b = list_new<dropbear_progress_connection>();
    const ra = recorder();
    const rb = recorder();
    const before = lookups();
    for (let i = 0; i < 3; i++) connect_remote(a, "localhost", String(srv.port), ra.cb, null, null, NORMAL);
    connect_remote(b, "localhost", String(srv.port), rb.cb, null, null, NORMAL);
    await tick();
    // One session's lookups no longer take libuv's two lookup threads from the other sessions
    // of a library server: one client's channels to names that never resolve held them all.
    expect(lookups() - before).toBe(2);
    await Promise.all([runConnects(a), runConnects(b)]);
    expect([...ra.calls, ...rb.calls].map((c) => c.result)).toEqual(Array(4).fill(DROPBEAR_SUCCESS));

    // Dropped before its turn (the session ended), a queued lookup is not made.
    const c = list_new<dropbear_progress_connection>();
    const rc = recorder();
    for (let i = 0; i < 3; i++) connect_remote(c, "localhost", String(srv.port), rc.cb, null, null, NORMAL);
    remove_connect_pending(c);
    await tick();
    expect(lookups()).toBe(before);
    expect(rc.calls).toEqual([]);
  });

  it("moves on to the next address when the first is refused", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    // Nothing listens on 127.0.0.2 at that port (the server took 127.0.0.1 only).
    const c = resolved(pending, ["127.0.0.2", "127.0.0.1"], srv.port, r.cb);
    await runConnects(pending);
    expect(c.res_iter).toBe(2);
    expect(c.errstring).toBe("Connection refused");
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.result).toBe(DROPBEAR_SUCCESS);
    expect((r.calls[0]!.sock!.stream as net.Socket).remoteAddress).toBe("127.0.0.1");
  });

  it("fails with the last error once every address is refused", async () => {
    const port = await unusedPort();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    resolved(pending, ["127.0.0.2", "127.0.0.3"], port, r.cb);
    await runConnects(pending);
    expect(r.calls).toEqual([{ result: DROPBEAR_FAILURE, sock: null, errstring: "Connection refused" }]);
  });

  it("names a -b address it cannot bind as C does", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    // TEST-NET-1: never an address of this machine.
    connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, "192.0.2.1", null, NORMAL);
    await runConnects(pending);
    expect(r.calls).toEqual([{ result: DROPBEAR_FAILURE, sock: null, errstring: "Error binding local address '192.0.2.1' (port (null)). Cannot assign requested address" }]);
  });

  it("finishes several pending connections in the same loop", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    for (let i = 0; i < 3; i++) {
      connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, null, null, NORMAL);
    }
    await runConnects(pending);
    expect(r.calls.map((c) => c.result)).toEqual([DROPBEAR_SUCCESS, DROPBEAR_SUCCESS, DROPBEAR_SUCCESS]);
    await expect.poll(() => srv.accepted.length).toBe(3);
  });
});

describe("cancel_connect", () => {
  it("closes the socket once connected and never calls the original callback", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    const c = connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, null, null, NORMAL);
    cancel_connect(c);
    await runConnects(pending);
    expect(r.calls).toEqual([]);
    await expect.poll(() => srv.accepted.length).toBe(1);
    // Our end was closed: the server's side sees EOF.
    const peer = srv.accepted[0]!;
    await new Promise<void>((resolve) => {
      peer.on("end", resolve);
      peer.resume();
    });
  });

  it("a cancelled connection that fails stays quiet too", async () => {
    const port = await unusedPort();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    cancel_connect(connect_remote(pending, "127.0.0.1", String(port), r.cb, null, null, NORMAL));
    await runConnects(pending);
    expect(r.calls).toEqual([]);
  });
});

describe("remove_connect_pending", () => {
  it("drops every pending connection and closes their sockets", async () => {
    const srv = await server();
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    const c = connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, null, null, NORMAL);
    connect_remote(pending, "127.0.0.1", String(srv.port), r.cb, null, null, NORMAL);
    // Let the lookups settle and the sockets start.
    const writefd = new Set<Fd>();
    set_connect_fds(pending, writefd);
    await selectWrite(writefd);
    set_connect_fds(pending, new Set());
    const sock = c.sock!;
    remove_connect_pending(pending);
    expect(pending.first).toBeNull();
    expect(sock.closed).toBe(true);
    expect(r.calls).toEqual([]);
  });
});

describe("connect_streamlocal", () => {
  it("connects to a unix socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-netio-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "sock");
    const srv = net.createServer();
    srv.listen(path);
    await once(srv, "listening");
    cleanups.push(() => srv.close());
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_streamlocal(pending, path, r.cb, NORMAL);
    await runConnects(pending);
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]!.result).toBe(DROPBEAR_SUCCESS);
  });

  it("refuses a path too long for sockaddr_un", () => {
    const pending = list_new<dropbear_progress_connection>();
    const r = recorder();
    connect_streamlocal(pending, `/tmp/${"x".repeat(120)}`, r.cb, NORMAL);
    set_connect_fds(pending, new Set());
    expect(r.calls).toEqual([{ result: DROPBEAR_FAILURE, sock: null, errstring: "Stream path too long" }]);
  });
});

describe("connect_set_writequeue", () => {
  it("gives the pending connection the queue fast open would send from", () => {
    const pending = list_new<dropbear_progress_connection>();
    const c = connect_remote(pending, "127.0.0.1", "99999", recorder().cb, null, null, NORMAL);
    const q = new Queue<never>();
    connect_set_writequeue(c, q);
    expect(c.writequeue).toBe(q);
  });
});

type GetsockoptInt = (fd: number, level: number, optname: number, optval: Int32Array, optlen: Uint32Array) => number;

/** getsockopt(2) of an int option on the descriptor under a Node socket or server. */
function getsockoptInt(owner: object, level: number, optname: number): number {
  const fd = (owner as { _handle: { fd: number } })._handle.fd;
  const getsockopt = libcFunc<GetsockoptInt>("int getsockopt(int sockfd, int level, int optname, _Out_ void *optval, _Inout_ uint32_t *optlen)");
  const val = new Int32Array(1);
  expect(getsockopt(fd, level, optname, val, Uint32Array.of(4))).toBe(0);
  return val[0]!;
}

const IPPROTO_IP = 0;
const IP_TOS = 1;
const SOL_SOCKET = 1;
const SO_PRIORITY = 12;
const SOL_TCP = 6;
const TCP_FASTOPEN = 23;

describe("set_sock_priority", () => {
  it("marks a socket low-delay (DSCP AF21, interactive band) and back to normal", async () => {
    const pair = await tcpPair();
    cleanups.push(pair.close);
    const fd = new StreamFd(pair.a);
    set_sock_priority(fd, dropbear_prio.DROPBEAR_PRIO_LOWDELAY, false);
    expect(getsockoptInt(pair.a, IPPROTO_IP, IP_TOS)).toBe(0x48);
    expect(getsockoptInt(pair.a, SOL_SOCKET, SO_PRIORITY)).toBe(6);
    set_sock_priority(fd, NORMAL, false);
    expect(getsockoptInt(pair.a, IPPROTO_IP, IP_TOS)).toBe(0);
    expect(getsockoptInt(pair.a, SOL_SOCKET, SO_PRIORITY)).toBe(0);
  });

  it("leaves the DSCP field alone with disable_ip_tos (-b), still setting the band", async () => {
    const pair = await tcpPair();
    cleanups.push(pair.close);
    set_sock_priority(new StreamFd(pair.a), dropbear_prio.DROPBEAR_PRIO_LOWDELAY, true);
    expect(getsockoptInt(pair.a, IPPROTO_IP, IP_TOS)).toBe(0);
    expect(getsockoptInt(pair.a, SOL_SOCKET, SO_PRIORITY)).toBe(6);
  });

  it("is harmless on a listening socket and on something that is not a socket", async () => {
    const { socks } = await dropbear_listen(null, "0", 1);
    cleanups.push(() => socks.forEach((s) => s.close()));
    set_sock_priority(socks[0]!, dropbear_prio.DROPBEAR_PRIO_LOWDELAY, false);
    expect(getsockoptInt(socks[0]!.server, IPPROTO_IP, IP_TOS)).toBe(0x48);
    expect(() => set_sock_priority(new StreamFd(process.stderr), dropbear_prio.DROPBEAR_PRIO_LOWDELAY, false)).not.toThrow();
  });
});

describe("set_listen_fast_open", () => {
  it("lets a listening socket queue MAX(MAX_UNAUTH_PER_IP, 5) fast open connections", async () => {
    const { socks } = await dropbear_listen(null, "0", 1);
    cleanups.push(() => socks.forEach((s) => s.close()));
    set_listen_fast_open(socks[0]!);
    expect(getsockoptInt(socks[0]!.server, SOL_TCP, TCP_FASTOPEN)).toBe(5);
  });
});

describe("warm_listen_lookup", () => {
  it("looks up only a name, and dropbear_listen then resolves and binds it as before", async () => {
    for (const numeric of [null, "", "127.0.0.1", "::1"]) {
      expect(warm_listen_lookup(numeric)).toBe(false);
    }
    expect(warm_listen_lookup("localhost")).toBe(true);
    const { socks, errstring } = await dropbear_listen("localhost", "0", 4);
    cleanups.push(() => socks.forEach((s) => s.close()));
    expect(errstring).toBeNull();
    expect(socks.length).toBeGreaterThan(0);
    for (const s of socks) {
      expect(["127.0.0.1", "::1"]).toContain((s.server.address() as net.AddressInfo).address);
    }
  });
});

describe("dropbear_listen", () => {
  it("leaves Node's address patterns sound after a lookup and listen on a name, through many matches and collections", () => {
    // A process of its own, as dbclient -L is: V8 flags switched around the first isIP() call
    // (session 48) left Node 24 to segfault in a later match, now and then (docs/bench.md,
    // forty-seventh round). The garbage brings on the collections that flush regexp code.
    const mod = JSON.stringify(new URL("../dist/index.js", import.meta.url).href);
    const inputs = ["localhost", "127.0.0.1", "::1", "::", "fe80::1%eth0", "::ffff:10.0.0.1", "1:2:3:4:5:6:7:8", "1::2::3", "256.1.1.1", "host.example", ""];
    const script = [
      `const n = await import(${mod});`,
      `n.warm_listen_lookup("localhost");`,
      `const { socks, errstring } = await n.dropbear_listen("localhost", "0", 4);`,
      "socks.forEach((s) => s.close());",
      `const net = require("node:net");`,
      "let v6 = 0;",
      "for (let r = 0; r < 200; r++) { for (let i = 0; i < 50; i++) v6 += net.isIP(`fe80::${i}`) + net.isIP(`name${i}`); const junk = []; for (let i = 0; i < 20000; i++) junk.push({ i }); }",
      `console.log(JSON.stringify([errstring, v6, ${JSON.stringify(inputs)}.map((s) => net.isIP(s))]));`,
    ].join(" ");
    const r = spawnSync(process.execPath, ["--input-type=commonjs", "-e", `(async () => { ${script} })()`], { encoding: "utf8" });
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout)).toEqual([null, 60000, [0, 4, 6, 6, 6, 6, 6, 0, 0, 0, 0]]);
  });

  it("refuses to listen on an IPv6 zone getaddrinfo refuses (`-p [::1%lo]:22`), as C does", async () => {
    const { socks, errstring } = await dropbear_listen("::1%lo", "0", 2);
    cleanups.push(() => socks.forEach((s) => s.close()));
    expect([socks.length, errstring]).toEqual([0, "Error resolving: Name or service not known"]);
  });

  it("takes \"*\" as glibc's getaddrinfo does with AI_PASSIVE, as no name: every interface", async () => {
    expect(warm_listen_lookup("*")).toBe(false);
    const { socks, errstring } = await dropbear_listen("*", "0", 4);
    cleanups.push(() => socks.forEach((s) => s.close()));
    expect(errstring).toBeNull();
    expect(socks.map((s) => (s.server.address() as net.AddressInfo).address)).toEqual(["0.0.0.0", "::"]);
  });
});

describe("get_sock_port", () => {
  it("gives a listener's port, port 0 resolved to the same port on every socket", async () => {
    const { socks, errstring } = await dropbear_listen(null, "0", 2);
    cleanups.push(() => socks.forEach((s) => s.close()));
    expect(errstring).toBeNull();
    const port = get_sock_port(socks[0]!);
    expect(port).toBeGreaterThan(0);
    for (const s of socks) {
      expect(get_sock_port(s)).toBe(port);
    }
  });

  it("gives a connected socket's local port, and 0 for what has none", async () => {
    const pair = await tcpPair();
    cleanups.push(pair.close);
    expect(get_sock_port(new StreamFd(pair.a))).toBe(pair.a.localPort);
    expect(get_sock_port(new StreamFd(process.stderr))).toBe(0);
  });
});

describe("servicePort", () => {
  it("takes numbers up to 65535 as glibc's strtoul reads them and the tcp names getaddrinfo finds in /etc/services", () => {
    expect(servicePort("22")).toBe(22);
    expect(servicePort("0")).toBe(0);
    expect(servicePort("65535")).toBe(65535);
    // getaddrinfo hands the whole string to strtoul: white space and a sign before the digits.
    expect(servicePort(" 22")).toBe(22);
    expect(servicePort("\t+22")).toBe(22);
    expect(servicePort("-0")).toBe(0);
    expect(servicePort("")).toBe(0);
    for (const bad of ["65536", "70000", "-1", "22a", "22 ", " ", "+", "no-such-service", "ssh/tcp"]) {
      expect(servicePort(bad), bad).toBeNull();
    }
    // glibc's own lookup (getent) agrees for names and aliases.
    for (const name of ["ssh", "postgresql", "postgres", "http"]) {
      const r = spawnSync("getent", ["services", `${name}/tcp`], { encoding: "utf8" });
      const want = r.status === 0 ? Number(/\s(\d+)\/tcp/.exec(r.stdout)![1]) : null;
      expect(servicePort(name), name).toBe(want);
    }
  });
});

describe("get_socket_address", () => {
  it("gives both ends, numeric", async () => {
    const pair = await tcpPair();
    cleanups.push(pair.close);
    expect(get_socket_address(new StreamFd(pair.b))).toEqual({
      local_host: "127.0.0.1",
      local_port: String(pair.b.localPort),
      remote_host: "127.0.0.1",
      remote_port: String(pair.a.localPort),
    });
  });

  it("exits as C does for something that is not a socket", () => {
    // (Not process.stderr: under a test runner it may well be a Unix-domain socket.)
    const file = createReadStream("/dev/null");
    cleanups.push(() => void file.destroy());
    expect(() => get_socket_address(new StreamFd(file))).toThrow(DropbearExit);
    expect(() => get_socket_address(new StreamFd(file))).toThrow("Failed socket address: Socket operation on non-socket");
  });

  it("names both ends of a Unix-domain socket as getnameinfo does: localhost, no port", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dbts-unix-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "s");
    const server = net.createServer().listen(path);
    await once(server, "listening");
    const accepted = once(server, "connection");
    const client = net.connect(path);
    const [peer] = (await accepted) as [net.Socket];
    cleanups.push(() => {
      client.destroy();
      peer.destroy();
      server.close();
    });
    expect(get_socket_address(new StreamFd(peer))).toEqual({ local_host: "localhost", local_port: "", remote_host: "localhost", remote_port: "" });
  });

  it("getaddrstring renders numerically; IPv6 hosts are bracketed in log lines", () => {
    expect(getaddrstring("::1", 22)).toEqual({ host: "::1", port: "22" });
    expect(hostPortString("::1", "22")).toBe("[::1]:22");
    expect(hostPortString("10.0.0.1", "2222")).toBe("10.0.0.1:2222");
  });
});
