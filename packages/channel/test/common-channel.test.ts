import { PassThrough } from "node:stream";
import { buf_getbyte, buf_getint, buf_getstring, buf_new, buf_putint, buf_putstring, buf_putbytes, buf_setpos, cbuf_getused, type buffer } from "@dropbear-ts/buffer";
import {
  Channel,
  CliSession,
  cli_runopts,
  FD_CLOSED,
  OUR_TRANS_MAX_PAYLOAD_LEN,
  SSH_OPEN_RESOURCE_SHORTAGE,
  SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
  runopts,
  SvrSession,
  type sshsession,
  svr_runopts,
  type ChanType,
  type StreamChannel,
} from "@dropbear-ts/core";
import { DropbearExit, dequeue, isempty } from "@dropbear-ts/dbutil";
import { StreamFd, ownReadAccepted, type Fd } from "@dropbear-ts/netio";
import {
  MAX_CHANNELS,
  SSH_MSG_CHANNEL_CLOSE,
  SSH_MSG_CHANNEL_DATA,
  SSH_MSG_CHANNEL_EOF,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_OPEN_FAILURE,
  SSH_MSG_CHANNEL_WINDOW_ADJUST,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { afterEach, describe, expect, it } from "vitest";
import {
  RECV_MAX_CHANNEL_DATA_LEN,
  chaninitialise,
  channelio,
  recv_msg_channel_close,
  recv_msg_channel_data,
  recv_msg_channel_eof,
  recv_msg_channel_open,
  recv_msg_channel_open_confirmation,
  recv_msg_channel_open_failure,
  recv_msg_channel_window_adjust,
  chancleanup,
  streamChannelGone,
  streamChannelOpened,
  send_msg_channel_open_init,
  setchannelfds,
} from "../src/index.js";
import { tcpPair } from "../../../tests/helpers/sockets.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

/** A session with no cipher yet, so queued packets can be read back in clear: a server's unless told. */
function session(window?: number): SvrSession;
function session(window: number, client: true): CliSession;
function session(window = 3000, client = false): sshsession {
  const opts = new runopts();
  opts.recv_window = window;
  const ses = client ? new CliSession(opts, new cli_runopts()) : new SvrSession(opts, new svr_runopts());
  ses.writepayload = buf_new(OUR_TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  return ses;
}

/** The payloads queued for the wire since the last call, as buffers positioned at the type. */
function sent(ses: sshsession): buffer[] {
  const out: buffer[] = [];
  while (!isempty(ses.writequeue)) {
    const wb = dequeue(ses.writequeue);
    const len = wb.data.readUInt32BE(0);
    const padlen = wb.data[4]!;
    const p = buf_new(len - padlen - 1);
    buf_putbytes(p, wb.data.subarray(5, 5 + len - padlen - 1));
    buf_setpos(p, 0);
    out.push(p);
  }
  ses.writequeue_len = 0;
  return out;
}

/** Run a handler on a payload built by `fill` (the message type byte is not included). */
function receive(ses: sshsession, handler: (ses: sshsession) => void, fill: (b: buffer) => void): void {
  const b = buf_new(RECV_MAX_CHANNEL_DATA_LEN + 100);
  fill(b);
  buf_setpos(b, 0);
  ses.payload = b;
  try {
    handler(ses);
  } finally {
    ses.payload = null;
  }
}

function exitMessage(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DropbearExit) return e.exitmsg;
    throw e;
  }
  return "(no exit)";
}

const plainType: ChanType = { name: "test-chan", inithandler: () => 0, check_close: null, reqhandler: null, closehandler: null, cleanup: null };

function openFromPeer(ses: sshsession, name: string, remotechan = 7, window = 100_000): void {
  receive(ses, recv_msg_channel_open, (b) => {
    buf_putstring(b, name);
    buf_putint(b, remotechan);
    buf_putint(b, window);
    buf_putint(b, OUR_TRANS_MAX_PAYLOAD_LEN + 8_000);
  });
}

describe("recv_msg_channel_open", () => {
  it("refuses an unknown type or a too long name with UNKNOWN_CHANNEL_TYPE", () => {
    const ses = session();
    chaninitialise(ses, [plainType]);
    openFromPeer(ses, "session");
    openFromPeer(ses, "x".repeat(65));
    const replies = sent(ses);
    expect(replies).toHaveLength(2);
    for (const p of replies) {
      expect(buf_getbyte(p)).toBe(SSH_MSG_CHANNEL_OPEN_FAILURE);
      expect(buf_getint(p)).toBe(7);
      expect(buf_getint(p)).toBe(SSH_OPEN_UNKNOWN_CHANNEL_TYPE);
    }
    expect(ses.chancount).toBe(0);
  });

  it("confirms a known type with our number, window and packet size, and clamps theirs", () => {
    const ses = session(5000);
    chaninitialise(ses, [plainType]);
    openFromPeer(ses, "test-chan", 42);
    const [p] = sent(ses);
    expect(buf_getbyte(p!)).toBe(SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
    expect(buf_getint(p!)).toBe(42);
    expect(buf_getint(p!)).toBe(0);
    expect(buf_getint(p!)).toBe(5000);
    expect(buf_getint(p!)).toBe(RECV_MAX_CHANNEL_DATA_LEN);
    expect(ses.channels[0]!.transmaxpacket).toBe(OUR_TRANS_MAX_PAYLOAD_LEN);
  });

  it("runs out at MAX_CHANNELS with RESOURCE_SHORTAGE", () => {
    const ses = session();
    chaninitialise(ses, [plainType]);
    for (let i = 0; i < MAX_CHANNELS; i++) openFromPeer(ses, "test-chan", i);
    sent(ses);
    expect(ses.chancount).toBe(MAX_CHANNELS);
    openFromPeer(ses, "test-chan", 5000);
    const [p] = sent(ses);
    expect(buf_getbyte(p!)).toBe(SSH_MSG_CHANNEL_OPEN_FAILURE);
    expect(buf_getint(p!)).toBe(5000);
    expect(buf_getint(p!)).toBe(SSH_OPEN_RESOURCE_SHORTAGE);
  });
});

/**
 * A channel we opened on one end of a TCP pair (the other end plays the local program). `ring`:
 * our end reads through its own ring (netio ownReadAccepted), as our programs' sockets do.
 */
async function openedChannel(ses: sshsession, ring = false): Promise<{ ch: Channel; peer: import("node:net").Socket }> {
  const pair = await tcpPair();
  cleanups.push(pair.close);
  chaninitialise(ses, []);
  expect(send_msg_channel_open_init(ses, ring ? ownReadAccepted(pair.b) : new StreamFd(pair.b), plainType)).toBe(0);
  buf_putstring(ses.writepayload, "");
  encrypt_packet(ses);
  const [open] = sent(ses);
  expect(buf_getbyte(open!)).toBe(SSH_MSG_CHANNEL_OPEN);
  expect(buf_getstring(open!).toString()).toBe("test-chan");
  receive(ses, recv_msg_channel_open_confirmation, (b) => {
    buf_putint(b, 0);
    buf_putint(b, 99);
    buf_putint(b, 1 << 20);
    buf_putint(b, 16384);
  });
  return { ch: ses.channels[0]!, peer: pair.a };
}

function data(ses: sshsession, bytes: Buffer): void {
  receive(ses, recv_msg_channel_data, (b) => {
    buf_putint(b, 0);
    buf_putstring(b, bytes);
  });
}

/** Resolves once one of the fds is ready, as select() returns; rejects after 5 s of nothing. */
function anyReady(r: Set<Fd>, w: Set<Fd>): Promise<void> {
  const ready = (): boolean => [...r].some((fd) => fd.readReady()) || [...w].some((fd) => fd.writeReady());
  if (ready()) return Promise.resolve();
  const fds = [...r, ...w];
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      for (const fd of fds) fd.removeWaiter(wake);
      if (err === undefined) resolve();
      else reject(err);
    };
    const wake = (): void => {
      if (ready()) done();
    };
    const timer = setTimeout(() => done(new Error("no channel fd became ready in 5 s")), 5000);
    for (const fd of fds) fd.addWaiter(wake);
  });
}

/** One loop iteration's channel part: select until something is ready, then channelio. */
async function iterate(ses: sshsession): Promise<void> {
  const r = new Set<Fd>();
  const w = new Set<Fd>();
  setchannelfds(ses, r, w, true);
  await anyReady(r, w);
  for (const fd of r) if (!fd.readReady()) r.delete(fd);
  for (const fd of w) if (!fd.writeReady()) w.delete(fd);
  channelio(ses, r, w);
}

/** Loop iterations until `want` of the payloads sent so far holds (at most 20), returning them all. */
async function iterateUntil(ses: sshsession, want: (sofar: buffer[]) => boolean): Promise<buffer[]> {
  const out: buffer[] = [];
  for (let i = 0; i < 20 && !want(out); i++) {
    await iterate(ses);
    out.push(...sent(ses));
  }
  return out;
}

/** Resolves once `n` bytes came out of the socket (rejects after 5 s), with everything that did. */
function readBytes(s: import("node:net").Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got} of ${n} bytes in 5 s`)), 5000);
    s.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks));
      }
    });
  });
}

describe("channel data and windows", () => {
  it("ends the session on more data than the ring holds, and on data after EOF", async () => {
    const ses = session(3000);
    const { ch } = await openedChannel(ses);
    expect(ch.remotechan).toBe(99);
    expect(exitMessage(() => data(ses, Buffer.alloc(3001)))).toBe("Oversized packet");
    const ses2 = session(3000);
    await openedChannel(ses2);
    receive(ses2, recv_msg_channel_eof, (b) => buf_putint(b, 0));
    expect(exitMessage(() => data(ses2, Buffer.alloc(10)))).toBe("Received data after eof");
  });

  it("ends the session on data beyond the window while the ring still has room", async () => {
    const ses = session(3000);
    const { peer } = await openedChannel(ses);
    const got = readBytes(peer, 999);
    data(ses, Buffer.alloc(999));
    await got;
    expect(exitMessage(() => data(ses, Buffer.alloc(2500)))).toBe("Received data beyond the window");
  });

  it("names unknown channels in the exit message", () => {
    const ses = session();
    chaninitialise(ses, []);
    expect(exitMessage(() => receive(ses, recv_msg_channel_eof, (b) => buf_putint(b, 5)))).toBe("EOF for unknown channel 5");
    expect(exitMessage(() => receive(ses, recv_msg_channel_close, (b) => buf_putint(b, 5)))).toBe("Close for unknown channel 5");
    expect(exitMessage(() => receive(ses, recv_msg_channel_data, (b) => buf_putint(b, 5)))).toBe("Unknown channel 5");
  });

  it("ignores a window adjust for a channel it does not have (paramiko sends one behind its CLOSE)", () => {
    const ses = session();
    chaninitialise(ses, []);
    receive(ses, recv_msg_channel_window_adjust, (b) => {
      buf_putint(b, 5);
      buf_putint(b, 1000);
    });
    expect(sent(ses)).toHaveLength(0);
  });

  it("writes data out and reopens the window by a third of it at a time, never past the ring", async () => {
    const ses = session(3000);
    const { ch, peer } = await openedChannel(ses);
    const got = readBytes(peer, 1000);
    data(ses, Buffer.alloc(999, 1));
    expect(ch.recvwindow).toBe(3000 - 999);
    expect(sent(ses)).toHaveLength(0);
    data(ses, Buffer.alloc(1, 2));
    const [adj] = sent(ses);
    expect(buf_getbyte(adj!)).toBe(SSH_MSG_CHANNEL_WINDOW_ADJUST);
    expect(buf_getint(adj!)).toBe(99);
    expect(buf_getint(adj!)).toBe(1000);
    expect(ch.recvwindow).toBe(3000);
    expect(await got).toEqual(Buffer.concat([Buffer.alloc(999, 1), Buffer.alloc(1, 2)]));
  });

  it("clamps the peer's window at 2^32-1", async () => {
    const ses = session();
    const { ch } = await openedChannel(ses);
    receive(ses, recv_msg_channel_window_adjust, (b) => {
      buf_putint(b, 0);
      buf_putint(b, 0xffffffff);
    });
    expect(ch.transwindow).toBe(0xffffffff);
  });

  it("sends what the local side writes, within the peer's window", async () => {
    const ses = session();
    const { ch, peer } = await openedChannel(ses);
    ch.transwindow = 10;
    peer.write("hello, channel");
    const [p, ...more] = await iterateUntil(ses, (sofar) => sofar.length > 0);
    expect(more).toHaveLength(0);
    expect(buf_getbyte(p!)).toBe(SSH_MSG_CHANNEL_DATA);
    expect(buf_getint(p!)).toBe(99);
    expect(buf_getstring(p!).toString()).toBe("hello, cha");
    expect(ch.transwindow).toBe(0);
    // No window: not even polled.
    const r = new Set<Fd>();
    setchannelfds(ses, r, new Set(), true);
    expect(r.size).toBe(0);
  });

  it("from a socket read through its ring: every byte once, in order, within window and packet size, none read out first", async () => {
    const ses = session();
    const { ch, peer } = await openedChannel(ses, true);
    const fd = ch.readfd as StreamFd;
    let readOut = 0;
    const readInto = fd.readInto.bind(fd);
    fd.readInto = (dest, off, max) => {
      const n = readInto(dest, off, max);
      readOut += n ?? 0;
      return n;
    };
    ch.transwindow = 150_000;
    const bytes = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff));
    peer.write(bytes);
    const got: Buffer[] = [];
    let total = 0;
    await iterateUntil(ses, (sofar) => {
      for (const p of sofar.splice(0)) {
        expect(buf_getbyte(p)).toBe(SSH_MSG_CHANNEL_DATA);
        expect(buf_getint(p)).toBe(99);
        // Longer than buf_getstring takes: the string by hand.
        const n = buf_getint(p);
        expect(n).toBeLessThanOrEqual(16384);
        expect(p.len - p.pos).toBe(n);
        got.push(Buffer.from(p.data.subarray(p.pos, p.pos + n)));
        total += n;
      }
      return total >= bytes.length;
    });
    expect(Buffer.concat(got).equals(bytes)).toBe(true);
    expect(ch.transwindow).toBe(50_000);
    // Handed to encrypt_packet where it waited (copied into the payload only there, for want of a cipher).
    expect(readOut).toBe(0);
  });

  it("does not poll the local side for a peer whose maximum packet is 0, window or not", async () => {
    const ses = session();
    const { ch, peer } = await openedChannel(ses);
    ch.transwindow = 100000;
    ch.transmaxpacket = 0;
    peer.write("never sent");
    const r = new Set<Fd>();
    setchannelfds(ses, r, new Set(), true);
    expect(r.has(ch.readfd as Fd)).toBe(false);
    ch.transmaxpacket = 1;
    setchannelfds(ses, r, new Set(), true);
    expect(r.has(ch.readfd as Fd)).toBe(true);
  });
});

describe("EOF and CLOSE", () => {
  it("half-closes towards the local side on the peer's EOF, then EOF and CLOSE once it closes too", async () => {
    const ses = session();
    const { ch, peer } = await openedChannel(ses);
    const ended = new Promise((r) => peer.once("end", r));
    peer.resume();
    receive(ses, recv_msg_channel_eof, (b) => buf_putint(b, 0));
    await ended;
    expect(ch.writefd).toBe(FD_CLOSED);
    expect(ch.readfd).not.toBe(FD_CLOSED);
    peer.write("last words");
    peer.end();
    const out = await iterateUntil(ses, (sofar) => sofar.some((p) => p.data[0] === SSH_MSG_CHANNEL_CLOSE));
    const types = out.map((p) => buf_getbyte(p));
    expect(types).toEqual([SSH_MSG_CHANNEL_DATA, SSH_MSG_CHANNEL_EOF, SSH_MSG_CHANNEL_CLOSE]);
    expect(buf_getint(out[0]!)).toBe(99);
    expect(buf_getstring(out[0]!).toString()).toBe("last words");
    expect(ch.sent_close).toBe(true);
    expect(ses.chancount).toBe(1);
    receive(ses, recv_msg_channel_close, (b) => buf_putint(b, 0));
    expect(ses.chancount).toBe(0);
    expect(ses.channels[0]).toBeNull();
  });

  it("a local side that reset: the failed write of the peer's next data closes the channel (C waits for ever)", async () => {
    const ses = session();
    const { ch, peer } = await openedChannel(ses);
    // The local program resets: our read sees it first, so EOF goes out and reading stops.
    peer.resetAndDestroy();
    const out = await iterateUntil(ses, (sofar) => sofar.some((p) => p.data[0] === SSH_MSG_CHANNEL_EOF));
    expect(out.map((p) => buf_getbyte(p))).toEqual([SSH_MSG_CHANNEL_EOF]);
    expect(ch.readfd).toBe(FD_CLOSED);
    // Node learns of the dead socket on a write; the data after that fails on receipt.
    for (let i = 0; i < 20 && ch.writefd !== FD_CLOSED; i++) {
      data(ses, Buffer.from("more"));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(ch.writefd).toBe(FD_CLOSED);
    expect(sent(ses).map((p) => buf_getbyte(p))).toContain(SSH_MSG_CHANNEL_CLOSE);
    expect(ch.sent_close).toBe(true);
  });

  it("answers the peer's CLOSE with CLOSE and removes the channel once peer data is written", async () => {
    const ses = session();
    const { peer } = await openedChannel(ses);
    peer.resume();
    data(ses, Buffer.from("bye"));
    receive(ses, recv_msg_channel_close, (b) => buf_putint(b, 0));
    expect(sent(ses).map((p) => buf_getbyte(p))).toEqual([SSH_MSG_CHANNEL_CLOSE]);
    expect(ses.chancount).toBe(0);
  });

  it("sends no window adjust for peer data written out after the peer's CLOSE", async () => {
    const ses = session(3000);
    const { ch, peer } = await openedChannel(ses);
    // The local side takes nothing for now: fill what Node holds for it, so the peer's data waits.
    const raw = (ch.writefd as StreamFd).stream as import("node:net").Socket;
    let filler = 0;
    while (raw.write(Buffer.alloc(64 * 1024))) filler += 64 * 1024;
    filler += 64 * 1024;
    data(ses, Buffer.alloc(1000, 7));
    expect(cbuf_getused(ch.writebuf!)).toBe(1000);
    receive(ses, recv_msg_channel_close, (b) => buf_putint(b, 0));
    expect(sent(ses)).toHaveLength(0);
    const got = readBytes(peer, filler + 1000);
    const out = await iterateUntil(ses, (sofar) => sofar.some((p) => p.data[0] === SSH_MSG_CHANNEL_CLOSE));
    expect(out.map((p) => buf_getbyte(p))).toEqual([SSH_MSG_CHANNEL_CLOSE]);
    expect((await got).subarray(filler)).toEqual(Buffer.alloc(1000, 7));
    expect(ses.chancount).toBe(0);
  });
});

describe("channel types", () => {
  it("keeps Dropbear's SSH_OPEN codes", () => {
    expect(SSH_OPEN_UNKNOWN_CHANNEL_TYPE).toBe(3);
    expect(new Channel(0, plainType, 1, 2, 3, 0).errfd).toBe(FD_CLOSED);
  });
});

describe("channels on a library caller's streams (StreamChannel)", () => {
  // StreamChannel is the library client's channel, so these run in a client's session.
  const streamType: ChanType<CliSession> = {
    name: "stream-chan",
    inithandler: (_ses, channel) => {
      streamChannelOpened(channel);
      return 0;
    },
    check_close: null,
    reqhandler: null,
    closehandler: null,
    cleanup: streamChannelGone,
  };

  function streams(): { sc: StreamChannel; events: string[]; toPeer: PassThrough; fromPeer: PassThrough } {
    const toPeer = new PassThrough();
    const fromPeer = new PassThrough();
    const events: string[] = [];
    const sc: StreamChannel = {
      readfd: new StreamFd(toPeer),
      writefd: new StreamFd(fromPeer),
      errfd: null,
      opened: false,
      onopen: () => events.push("open"),
      onclose: () => events.push(`close opened=${sc.opened}`),
    };
    return { sc, events, toPeer, fromPeer };
  }

  function open(ses: CliSession, sc: StreamChannel): void {
    expect(send_msg_channel_open_init(ses, sc.readfd, streamType, sc)).toBe(0);
    buf_putstring(ses.writepayload, "");
    encrypt_packet(ses);
    sent(ses);
  }

  it("takes one fd per direction once confirmed, and closes both when the channel goes", () => {
    const ses = session(3000, true);
    chaninitialise(ses, []);
    const { sc, events, fromPeer } = streams();
    open(ses, sc);
    expect(ses.channels[0]!.typedata).toBe(sc);
    receive(ses, recv_msg_channel_open_confirmation, (b) => {
      for (const n of [0, 5, 1 << 20, 16384]) buf_putint(b, n);
    });
    const ch = ses.channels[0]!;
    expect(events).toEqual(["open"]);
    expect([ch.readfd, ch.writefd, ch.errfd, ch.bidir_fd]).toEqual([sc.readfd, sc.writefd, FD_CLOSED, false]);
    chancleanup(ses);
    expect(events).toEqual(["open", "close opened=true"]);
    expect(sc.readfd.closed && sc.writefd.closed).toBe(true);
    expect(fromPeer.destroyed).toBe(true);
  });

  it("a refused open closes both streams (the channel held only one) and tells the caller", () => {
    const ses = session(3000, true);
    chaninitialise(ses, []);
    const { sc, events } = streams();
    open(ses, sc);
    receive(ses, recv_msg_channel_open_failure, (b) => {
      for (const n of [0, 2]) buf_putint(b, n);
      buf_putstring(b, "connect failed");
      buf_putstring(b, "");
    });
    expect(events).toEqual(["close opened=false"]);
    expect(ses.chancount).toBe(0);
    expect(sc.readfd.closed && sc.writefd.closed).toBe(true);
  });
});
