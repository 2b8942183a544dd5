import * as net from "node:net";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { buf_getint, buf_getstring, buf_new, buf_putbytes } from "@dropbear-ts/buffer";
import { svr_parse_pubkey_options } from "@dropbear-ts/auth";
import { chancleanup, recv_msg_channel_close, recv_msg_channel_data, recv_msg_channel_eof, recv_msg_channel_open } from "@dropbear-ts/channel";
import { FD_CLOSED, SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, SSH_OPEN_CONNECT_FAILED, TCPFwdEntry, type SvrEmbed, type SvrSession, type sshsession } from "@dropbear-ts/core";
import { DropbearExit, list_append, setLogHandler } from "@dropbear-ts/dbutil";
import { remove_all_listeners } from "@dropbear-ts/listener";
import { remove_connect_pending, type ListenerFd } from "@dropbear-ts/netio";
import {
  SSH_MSG_CHANNEL_CLOSE,
  SSH_MSG_CHANNEL_DATA,
  SSH_MSG_CHANNEL_EOF,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_OPEN_FAILURE,
  SSH_MSG_REQUEST_FAILURE,
  SSH_MSG_REQUEST_SUCCESS,
} from "@dropbear-ts/options";
import {
  cli_chan_tcpremote,
  cli_recv_msg_request_failure,
  cli_recv_msg_request_success,
  setup_localtcp,
  setup_remotetcp,
  svr_chan_tcpdirect,
  svr_recv_msg_global_request,
  warm_localtcp,
} from "../src/index.js";
import { cliSession, receive, sent, svrSession, turn, turnsUntil } from "./harness.js";
import { sshString, u32 } from "../../../tests/helpers/wire.js";
import { unusedPort } from "../../../tests/helpers/sockets.js";
import { startEchoTarget, type Target } from "../../../tests/helpers/tunnel.js";

const sessions: sshsession[] = [];
const targets: Target[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const ses of sessions.splice(0)) {
    remove_all_listeners(ses);
    remove_connect_pending(ses.conn_pending);
    chancleanup(ses);
  }
  for (const t of targets.splice(0)) await t.close();
});

function track<T extends sshsession>(ses: T): T {
  sessions.push(ses);
  return ses;
}

async function echo(): Promise<Target> {
  const t = await startEchoTarget();
  targets.push(t);
  return t;
}

function connect(port: number, host = "127.0.0.1"): net.Socket {
  const s = net.connect({ port, host, allowHalfOpen: true });
  sockets.push(s);
  return s;
}

const globalRequest = (name: string, wantreply: boolean, ...rest: Buffer[]): Buffer => Buffer.concat([sshString(name), Buffer.of(wantreply ? 1 : 0), ...rest]);
const tcpipForward = (addr: string, port: number, wantreply = true): Buffer => globalRequest("tcpip-forward", wantreply, sshString(addr), u32(port));

/** The one reply to a global request: its type, and the port for a success that carries one. */
async function request(ses: SvrSession, body: Buffer): Promise<{ type: number; port: number | null }[]> {
  await receive(ses, svr_recv_msg_global_request, body);
  return sent(ses).map((p) => ({ type: p.type, port: p.pos < p.len ? buf_getint(p) : null }));
}

function listeningAddresses(ses: sshsession): string[] {
  return ses.listeners.filter((l) => l !== null).flatMap((l) => l!.socks.map((s: ListenerFd) => (s.server.address() as net.AddressInfo).address));
}

/** Listening on loopback (IPv4, and IPv6 where the host has it) and nowhere else. */
function loopbackOnly(ses: sshsession): boolean {
  const addrs = listeningAddresses(ses);
  return addrs.includes("127.0.0.1") && addrs.every((a) => a === "127.0.0.1" || a === "::1");
}

/** Connect to `port` and wait for the server to accept the connection. */
async function connected(port: number): Promise<net.Socket> {
  const s = connect(port);
  await once(s, "connect");
  return s;
}

describe("tcpip-forward (a client's -R, on the server)", () => {
  it("port 0: listens on loopback, answers with the port, and opens forwarded-tcpip for each connection", async () => {
    const ses = track(svrSession([]));
    const [reply] = await request(ses, tcpipForward("", 0));
    expect(reply!.type).toBe(SSH_MSG_REQUEST_SUCCESS);
    const port = reply!.port!;
    expect(port).toBeGreaterThan(0);
    expect(loopbackOnly(ses)).toBe(true);
    const s = await connected(port);
    const [open] = await turnsUntil(ses, (o) => o.length > 0);
    expect(open!.type).toBe(SSH_MSG_CHANNEL_OPEN);
    expect(buf_getstring(open!).toString()).toBe("forwarded-tcpip");
    buf_getint(open!); // our channel
    buf_getint(open!); // window
    buf_getint(open!); // max packet
    // The address as requested, the port as bound, and who connected.
    expect(buf_getstring(open!).toString()).toBe("");
    expect(buf_getint(open!)).toBe(port);
    expect(buf_getstring(open!).toString()).toBe("127.0.0.1");
    expect(buf_getint(open!)).toBe(s.localPort);
  });

  it("names the requested address back byte for byte, UTF-8 or not", async () => {
    // OpenSSH's ssh refuses a forwarded-tcpip whose address is not exactly its -R's
    // ("Server requests forwarding for unknown listen_port"): a UTF-8 name came back re-encoded.
    for (const addr of [Buffer.from("bücher", "utf8"), Buffer.of(0x68, 0xff, 0x80)]) {
      const ses = track(svrSession([]));
      const [reply] = await request(ses, globalRequest("tcpip-forward", true, sshString(addr), u32(0)));
      expect(reply!.type).toBe(SSH_MSG_REQUEST_SUCCESS);
      await connected(reply!.port!);
      const [open] = await turnsUntil(ses, (o) => o.length > 0);
      expect(buf_getstring(open!).toString()).toBe("forwarded-tcpip");
      buf_getint(open!); // our channel
      buf_getint(open!); // window
      buf_getint(open!); // max packet
      expect(buf_getstring(open!)).toEqual(addr);
    }
  });

  it("a fixed port is answered without one; no reply when none is wanted", async () => {
    const ses = track(svrSession([]));
    const port = await unusedPort();
    expect(await request(ses, tcpipForward("localhost", port))).toEqual([{ type: SSH_MSG_REQUEST_SUCCESS, port: null }]);
    await connected(port);
    const other = await unusedPort();
    expect(await request(ses, tcpipForward("localhost", other, false))).toEqual([]);
    await connected(other);
  });

  it("binds only loopback without -a, whatever address is asked for; with -a the address asked", async () => {
    const ses = track(svrSession([]));
    await request(ses, tcpipForward("0.0.0.0", 0));
    expect(loopbackOnly(ses)).toBe(true);
    const all = track(svrSession([], (_s, opts) => (opts.listen_fwd_all = true)));
    await request(all, tcpipForward("127.0.0.2", 0));
    expect(listeningAddresses(all)).toEqual(["127.0.0.2"]);
    // "localhost" stays loopback even with -a.
    const local = track(svrSession([], (_s, opts) => (opts.listen_fwd_all = true)));
    await request(local, tcpipForward("localhost", 0));
    expect(loopbackOnly(local)).toBe(true);
    // The address is a C string: what follows a NUL is not part of it, for the bind nor the cancel.
    const nul = track(svrSession([], (_s, opts) => (opts.listen_fwd_all = true)));
    const [{ port }] = (await request(nul, tcpipForward("localhost\0x", 0))) as [{ type: number; port: number }];
    expect(loopbackOnly(nul)).toBe(true);
    expect(await request(nul, globalRequest("cancel-tcpip-forward", true, sshString("localhost"), u32(port)))).toEqual([{ type: SSH_MSG_REQUEST_SUCCESS, port: null }]);
  });

  it("takes a UTF-8 listen address as the client's bytes: the embedder is asked about that name", async () => {
    const ses = track(svrSession([]));
    const asked: string[] = [];
    // Only the hook a tcpip-forward reaches.
    ses.svr_ses.embed = { remotetcp: (_s: SvrSession, addr: string) => (asked.push(addr), true) } as unknown as SvrEmbed;
    const [reply] = await request(ses, tcpipForward("bücher", 0));
    expect(reply!.type).toBe(SSH_MSG_REQUEST_SUCCESS);
    expect(asked).toEqual(["bücher"]);
  });

  it("refuses bad ports, privileged ports, long addresses, and everything under -k", async () => {
    const ses = track(svrSession([]));
    const failure = [{ type: SSH_MSG_REQUEST_FAILURE, port: null }];
    expect(await request(ses, tcpipForward("", 65536))).toEqual(failure);
    expect(await request(ses, tcpipForward("", 0xffffffff))).toEqual(failure);
    expect(await request(ses, tcpipForward("", 80))).toEqual(failure);
    expect(await request(ses, tcpipForward("a".repeat(255), 0))).toEqual(failure);
    expect(ses.listeners.filter((l) => l !== null)).toHaveLength(0);
    const k = track(svrSession([], (s) => (s.noremotefwd = true)));
    expect(await request(k, tcpipForward("", 0))).toEqual(failure);
    expect(await request(k, globalRequest("cancel-tcpip-forward", true, sshString(""), u32(1)))).toEqual(failure);
  });

  it("refuses unknown requests and over-long names", async () => {
    const ses = track(svrSession([]));
    expect(await request(ses, globalRequest("keepalive@openssh.com", true))).toEqual([{ type: SSH_MSG_REQUEST_FAILURE, port: null }]);
    expect(await request(ses, globalRequest("x".repeat(65), true))).toEqual([{ type: SSH_MSG_REQUEST_FAILURE, port: null }]);
    expect(await request(ses, globalRequest("keepalive@openssh.com", false))).toEqual([]);
  });

  it("reads the request name as C's strcmp does, up to a NUL", async () => {
    const ses = track(svrSession([]));
    const [reply] = await request(ses, globalRequest("tcpip-forward\0junk", true, sshString("127.0.0.1"), u32(0)));
    expect(reply!.type).toBe(SSH_MSG_REQUEST_SUCCESS);
    expect(await request(ses, globalRequest("cancel-tcpip-forward\0", true, sshString("127.0.0.1"), u32(reply!.port!)))).toEqual([{ type: SSH_MSG_REQUEST_SUCCESS, port: null }]);
  });
});

describe("cancel-tcpip-forward", () => {
  it("removes the listener whose address string and port both match, and only that", async () => {
    const ses = track(svrSession([]));
    const [{ port }] = (await request(ses, tcpipForward("localhost", 0))) as [{ type: number; port: number }];
    const cancel = (addr: string, p: number) => request(ses, globalRequest("cancel-tcpip-forward", true, sshString(addr), u32(p)));
    // The same socket, but not the address string the client asked for.
    expect(await cancel("127.0.0.1", port)).toEqual([{ type: SSH_MSG_REQUEST_FAILURE, port: null }]);
    expect(await cancel("localhost", port + 1)).toEqual([{ type: SSH_MSG_REQUEST_FAILURE, port: null }]);
    expect(await cancel("localhost", port)).toEqual([{ type: SSH_MSG_REQUEST_SUCCESS, port: null }]);
    expect(ses.listeners.filter((l) => l !== null)).toHaveLength(0);
    const s = connect(port);
    const [err] = (await once(s, "error")) as [NodeJS.ErrnoException];
    expect(err.code).toBe("ECONNREFUSED");
    expect(await cancel("localhost", port)).toEqual([{ type: SSH_MSG_REQUEST_FAILURE, port: null }]);
  });
});

/** A direct-tcpip open from the peer (its -L) to host:port, from origin:oport. */
function directTcpip(host: string | Buffer, port: number, origin = "127.0.0.1", oport = 40000, remotechan = 5): Buffer {
  return Buffer.concat([sshString("direct-tcpip"), u32(remotechan), u32(1 << 20), u32(32768), sshString(host), u32(port), sshString(origin), u32(oport)]);
}

function openFailure(p: { type: number } & Parameters<typeof buf_getint>[0]): { type: number; chan: number; reason: number } {
  return { type: p.type, chan: buf_getint(p), reason: buf_getint(p) };
}

describe("direct-tcpip (a client's -L, on the server)", () => {
  it("connects to the target, confirms, and carries data both ways", async () => {
    const t = await echo();
    const ses = track(svrSession([svr_chan_tcpdirect]));
    await receive(ses, recv_msg_channel_open, directTcpip("127.0.0.1", t.port));
    const [conf] = await turnsUntil(ses, (o) => o.length > 0);
    expect(conf!.type).toBe(SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
    expect(buf_getint(conf!)).toBe(5);
    await receive(ses, recv_msg_channel_data, Buffer.concat([u32(0), sshString("ping through the forward")]));
    const out = await turnsUntil(ses, (o) => o.some((p) => p.type === SSH_MSG_CHANNEL_DATA));
    const data = out.find((p) => p.type === SSH_MSG_CHANNEL_DATA)!;
    expect(buf_getint(data)).toBe(5);
    expect(buf_getstring(data).toString()).toBe("ping through the forward");
    expect(t.accepted()).toBe(1);
  });

  it("the peer's EOF while connecting: EOF and CLOSE go out, the late socket is dropped, the peer's CLOSE frees the channel", async () => {
    const t = await echo();
    const ses = track(svrSession([svr_chan_tcpdirect]));
    await receive(ses, recv_msg_channel_open, directTcpip("127.0.0.1", t.port));
    await receive(ses, recv_msg_channel_eof, u32(0));
    expect(sent(ses).map((p) => p.type)).toEqual([SSH_MSG_CHANNEL_EOF, SSH_MSG_CHANNEL_CLOSE]);
    // The connect still completes (the target sees it) but nothing is confirmed or read.
    for (let i = 0; i < 10 && ses.conn_pending.first !== null; i++) await turn(ses);
    expect(ses.conn_pending.first).toBeNull();
    await expect.poll(() => t.accepted()).toBe(1);
    expect(sent(ses)).toEqual([]);
    expect(ses.channels[0]!.readfd).toBe(FD_CLOSED);
    await receive(ses, recv_msg_channel_close, u32(0));
    expect(ses.chancount).toBe(0);
  });

  it("a refused connect fails the open with CONNECT_FAILED and frees the channel", async () => {
    const ses = track(svrSession([svr_chan_tcpdirect]));
    await receive(ses, recv_msg_channel_open, directTcpip("127.0.0.1", await unusedPort()));
    const [fail] = await turnsUntil(ses, (o) => o.length > 0);
    expect(openFailure(fail!)).toEqual({ type: SSH_MSG_CHANNEL_OPEN_FAILURE, chan: 5, reason: SSH_OPEN_CONNECT_FAILED });
    expect(ses.chancount).toBe(0);
  });

  it("takes a UTF-8 host name as the client's bytes: permitopen= matches it and the lookup asks for it", async () => {
    // Decoded one char per byte, "bücher" reached permitopen= and getaddrinfo as "bÃ¼cher":
    // a key allowed to reach it was refused, where C compares and looks up the bytes.
    const ses = track(svrSession([svr_chan_tcpdirect]));
    const line = Buffer.from('permitopen="bücher:4242"');
    const options = buf_new(line.length);
    buf_putbytes(options, line);
    ses.authstate.pubkey_options = svr_parse_pubkey_options(options, 1, "authorized_keys");
    await receive(ses, recv_msg_channel_open, directTcpip("bücher", 4242));
    expect(sent(ses)).toEqual([]);
    expect(ses.channels[0]!.conn_pending!.remotehost).toBe("bücher");
  });

  it("matches a permitopen= host that is not UTF-8 with the client's bytes, as C's strcmp does", async () => {
    // Before, the option's "b\xfccher" was decoded as UTF-8 ("b\ufffdcher") and no request matched.
    const ses = track(svrSession([svr_chan_tcpdirect]));
    const latin1 = Buffer.from("bücher", "latin1");
    const line = Buffer.concat([Buffer.from('permitopen="'), latin1, Buffer.from(':4242"')]);
    const options = buf_new(line.length);
    buf_putbytes(options, line);
    ses.authstate.pubkey_options = svr_parse_pubkey_options(options, 1, "authorized_keys");
    await receive(ses, recv_msg_channel_open, directTcpip(Buffer.from("bücher"), 4242));
    expect(sent(ses).map(openFailure)).toEqual([{ type: SSH_MSG_CHANNEL_OPEN_FAILURE, chan: 5, reason: SSH_OPEN_ADMINISTRATIVELY_PROHIBITED }]);
    await receive(ses, recv_msg_channel_open, directTcpip(latin1, 4242));
    expect(sent(ses)).toEqual([]);
    expect(ses.channels.some((c) => c?.conn_pending?.remotehost === "bücher")).toBe(true);
  });

  it("refuses ports over 65535, over-long hosts, and everything under -j, before connecting", async () => {
    const t = await echo();
    const ses = track(svrSession([svr_chan_tcpdirect]));
    for (const body of [
      directTcpip("127.0.0.1", 65536),
      directTcpip("127.0.0.1", t.port, "127.0.0.1", 65536),
      directTcpip("h".repeat(255), t.port),
      directTcpip("127.0.0.1", t.port, "o".repeat(255)),
    ]) {
      await receive(ses, recv_msg_channel_open, body);
      expect(sent(ses).map(openFailure)).toEqual([{ type: SSH_MSG_CHANNEL_OPEN_FAILURE, chan: 5, reason: SSH_OPEN_ADMINISTRATIVELY_PROHIBITED }]);
    }
    const j = track(svrSession([svr_chan_tcpdirect], (s) => (s.nolocaltcp = true)));
    await receive(j, recv_msg_channel_open, directTcpip("127.0.0.1", t.port));
    expect(sent(j).map(openFailure)).toEqual([{ type: SSH_MSG_CHANNEL_OPEN_FAILURE, chan: 5, reason: SSH_OPEN_ADMINISTRATIVELY_PROHIBITED }]);
    expect(ses.chancount + j.chancount).toBe(0);
    expect(ses.conn_pending.first).toBeNull();
    expect(t.accepted()).toBe(0);
  });
});

function fwd(listenaddr: string | null, listenport: number, connectaddr: string, connectport: number): TCPFwdEntry {
  return Object.assign(new TCPFwdEntry(), { listenaddr, listenport, connectaddr, connectport });
}

/** Collect log lines while fn runs. */
async function logged<T>(fn: () => Promise<T> | T): Promise<{ result: T; logs: string[] }> {
  const logs: string[] = [];
  const prev = setLogHandler((_p, m) => logs.push(m));
  try {
    return { result: await fn(), logs };
  } finally {
    setLogHandler(prev);
  }
}

describe("the client's -L and -R", () => {
  it("-L listens on localhost and opens direct-tcpip naming the target and who connected", async () => {
    const port = await unusedPort();
    const ses = track(cliSession([], (o) => list_append(o.localfwds, fwd(null, port, "target.example", 2222))));
    await setup_localtcp(ses);
    const s = await connected(port);
    const [open] = await turnsUntil(ses, (o) => o.length > 0);
    expect(open!.type).toBe(SSH_MSG_CHANNEL_OPEN);
    expect(buf_getstring(open!).toString()).toBe("direct-tcpip");
    buf_getint(open!);
    buf_getint(open!);
    buf_getint(open!);
    expect(buf_getstring(open!).toString()).toBe("target.example");
    expect(buf_getint(open!)).toBe(2222);
    expect(buf_getstring(open!).toString()).toBe("127.0.0.1");
    expect(buf_getint(open!)).toBe(s.localPort);
  });

  it("looks up the first -L listen address that is a name ahead, and none when all are numeric or -g", () => {
    const named = track(cliSession([], (o) => {
      list_append(o.localfwds, fwd("127.0.0.1", 1, "127.0.0.1", 7));
      list_append(o.localfwds, fwd(null, 2, "127.0.0.1", 7));
    }));
    expect(warm_localtcp(named)).toBe("localhost");
    const numeric = track(cliSession([], (o) => list_append(o.localfwds, fwd("::1", 1, "127.0.0.1", 7))));
    expect(warm_localtcp(numeric)).toBeNull();
    const all = track(cliSession([], (o) => list_append(o.localfwds, fwd(null, 1, "127.0.0.1", 7))));
    all.opts.listen_fwd_all = true;
    expect(warm_localtcp(all)).toBeNull();
    expect(warm_localtcp(track(cliSession([])))).toBeNull();
  });

  it("-R asks for tcpip-forward, learns an allocated port, and reports a refusal (fatal with ExitOnForwardFailure)", async () => {
    const ses = track(cliSession([], (o) => {
      list_append(o.remotefwds, fwd(null, 0, "127.0.0.1", 7));
      list_append(o.remotefwds, fwd("10.0.0.1", 8022, "127.0.0.1", 22));
    }));
    setup_remotetcp(ses);
    const reqs = sent(ses).map((p) => ({ type: p.type, name: buf_getstring(p).toString(), want: p.data[p.pos++], addr: buf_getstring(p).toString(), port: buf_getint(p) }));
    expect(reqs.map((r) => [r.name, r.want, r.addr, r.port])).toEqual([
      ["tcpip-forward", 1, "localhost", 0],
      ["tcpip-forward", 1, "10.0.0.1", 8022],
    ]);
    const { logs } = await logged(async () => {
      await receive(ses, cli_recv_msg_request_success, u32(40123));
      await receive(ses, cli_recv_msg_request_failure, Buffer.alloc(0));
    });
    expect([...ses.cli_ses.cli_opts.remotefwds].map((f) => f.listenport)).toEqual([40123, 8022]);
    expect(logs).toEqual(["Allocated port 40123 for remote forward to 127.0.0.1:7", "Remote TCP forward request failed (port 8022 -> 127.0.0.1:22)"]);
    // A reply nobody waits for is ignored.
    await receive(ses, cli_recv_msg_request_failure, Buffer.alloc(0));

    const strict = track(cliSession([], (o) => {
      o.exit_on_fwd_failure = true;
      list_append(o.remotefwds, fwd(null, 8022, "127.0.0.1", 22));
    }));
    setup_remotetcp(strict);
    await expect(logged(() => receive(strict, cli_recv_msg_request_failure, Buffer.alloc(0)))).rejects.toThrow(
      new DropbearExit(1, "Remote TCP forward request failed (port 8022 -> 127.0.0.1:22)"),
    );
  });

  it("forwarded-tcpip from the server connects to the -R target; an unrequested one is refused", async () => {
    const t = await echo();
    const ses = track(cliSession([cli_chan_tcpremote], (o) => list_append(o.remotefwds, fwd("localhost", 5555, "127.0.0.1", t.port))));
    const forwarded = (addr: string, port: number): Buffer =>
      Buffer.concat([sshString("forwarded-tcpip"), u32(9), u32(1 << 20), u32(32768), sshString(addr), u32(port), sshString("192.0.2.1"), u32(1234)]);
    // The server names the port with its own idea of the address: the port alone matches.
    await receive(ses, recv_msg_channel_open, forwarded("127.0.0.1", 5555));
    const [conf] = await turnsUntil(ses, (o) => o.length > 0);
    expect(conf!.type).toBe(SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
    expect(t.accepted()).toBe(1);
    const { logs } = await logged(() => receive(ses, recv_msg_channel_open, forwarded("localhost", 6666)));
    expect(sent(ses).map(openFailure)).toEqual([{ type: SSH_MSG_CHANNEL_OPEN_FAILURE, chan: 9, reason: SSH_OPEN_ADMINISTRATIVELY_PROHIBITED }]);
    expect(logs).toEqual(['Server sent unrequested forward from "localhost:6666"']);
  });

  it("forwarded-tcpip naming a UTF-8 -R address goes to that -R, not to another on the same port", async () => {
    // Two -R on one port (a server with -a binds each address): the address, sent as UTF-8,
    // was compared one char per byte, never matched, and the port alone chose the first.
    const [other, wanted] = [await echo(), await echo()];
    const ses = track(
      cliSession([cli_chan_tcpremote], (o) => {
        list_append(o.remotefwds, fwd("127.0.0.1", 5555, "127.0.0.1", other.port));
        list_append(o.remotefwds, fwd("bücher", 5555, "127.0.0.1", wanted.port));
      }),
    );
    const open = Buffer.concat([sshString("forwarded-tcpip"), u32(9), u32(1 << 20), u32(32768), sshString("bücher"), u32(5555), sshString("192.0.2.1"), u32(1234)]);
    await receive(ses, recv_msg_channel_open, open);
    const [conf] = await turnsUntil(ses, (o) => o.length > 0);
    expect(conf!.type).toBe(SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
    expect([other.accepted(), wanted.accepted()]).toEqual([0, 1]);
  });
});
