// Hostile channel messages: whatever the peer sends in whatever order (unknown ids, data beyond
// the window or after EOF, window overflow, replies to opens we never made), the handlers either
// act or end the session with a DropbearExit; windows and rings stay within their bounds, and
// every data byte taken is either written out or held in the ring.
import { Duplex, PassThrough } from "node:stream";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buf_new, buf_putbyte, buf_putbytes, buf_putint, buf_putstring, buf_setpos, cbuf_getused, type buffer } from "@dropbear-ts/buffer";
import { SSH_OPEN_IN_PROGRESS, chanfdIsOpen, cli_runopts, CliSession, isCliSession, runopts, svr_runopts, SvrSession, type Channel, type ChanType, type sshsession } from "@dropbear-ts/core";
import { dequeue, isempty } from "@dropbear-ts/dbutil";
import { StreamFd, type Fd } from "@dropbear-ts/netio";
import { DROPBEAR_SUCCESS, MAX_CHANNELS, TRANS_MAX_PAYLOAD_LEN } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import {
  CHANNEL_READS_PER_TURN,
  RECV_MAX_CHANNEL_DATA_LEN,
  channel_connect_done,
  channelio,
  chancleanup,
  chaninitialise,
  recv_msg_channel_close,
  recv_msg_channel_data,
  recv_msg_channel_eof,
  recv_msg_channel_extended_data,
  recv_msg_channel_open,
  recv_msg_channel_open_confirmation,
  recv_msg_channel_open_failure,
  recv_msg_channel_request,
  recv_msg_channel_window_adjust,
  send_msg_channel_open_init,
  setchannelfds,
} from "../src/index.js";
import { cleanly, fuzzParams, fuzzTimeout } from "../../../tests/helpers/fuzz.js";

/**
 * A local end that takes writes but never finishes one, so after its high-water mark the
 * channel's ring fills (a stalled program). Everything handed to it stays in writableLength.
 */
class StalledSink extends Duplex {
  constructor() {
    super({ highWaterMark: 1024, allowHalfOpen: true });
  }
  override _read(): void {}
  override _write(_chunk: Buffer, _enc: BufferEncoding, _cb: (e?: Error | null) => void): void {}
  /** Bytes handed to the stream so far. */
  received(): number {
    return this.writableLength;
  }
}

interface Local {
  sink: StalledSink;
}

/** The peer's channels get a stalled local end; "session" ones take stderr data too. */
function chanType(name: string, locals: Map<Channel, Local>): ChanType {
  return {
    name,
    inithandler: (_ses, ch) => {
      const sink = new StalledSink();
      const fd = new StreamFd(sink);
      ch.writefd = fd;
      ch.readfd = fd;
      ch.bidir_fd = true;
      locals.set(ch, { sink });
      return 0;
    },
    check_close: null,
    reqhandler: null,
    closehandler: null,
    cleanup: null,
  };
}

/** One message from the peer: its handler and its payload after the type byte. */
interface Msg {
  name: string;
  handler: (ses: sshsession) => void;
  body: Buffer;
}

/**
 * Extended data has a handler on the client only: a server's packet table has none, so there
 * process_packet answers "unimplemented" and the message never reaches channel code.
 */
function clientOnly(handler: (ses: CliSession) => void): (ses: sshsession) => void {
  return (ses) => {
    if (isCliSession(ses)) handler(ses);
  };
}

/** Mostly channels that exist, sometimes any number. */
/** Channels whose (pretend) connect is still in progress, per session. */
const pending = new WeakMap<sshsession, Channel[]>();

/** "direct-tcpip" as a forward opens it: the answer waits for a connect. */
const pendingType: ChanType = {
  name: "direct-tcpip",
  inithandler: (ses, ch) => {
    pending.set(ses, [...(pending.get(ses) ?? []), ch]);
    return SSH_OPEN_IN_PROGRESS;
  },
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};

/** The oldest pending connect still wanted completes, on a socket with bytes to read. */
function connected(ses: sshsession): void {
  const list = pending.get(ses) ?? [];
  const ch = list.shift();
  if (ch === undefined || ses.channels[ch.index] !== ch) return;
  const far = new PassThrough();
  far.write("from the target");
  channel_connect_done(ses, DROPBEAR_SUCCESS, new StreamFd(far), ch, null);
}

/** One loop turn's channel I/O on whatever is ready now. */
function io(ses: sshsession): void {
  const r = new Set<Fd>();
  const w = new Set<Fd>();
  setchannelfds(ses, r, w, true);
  for (const fd of r) if (!fd.readReady()) r.delete(fd);
  for (const fd of w) if (!fd.writeReady()) w.delete(fd);
  channelio(ses, r, w);
}

const chanId = fc.oneof({ weight: 19, arbitrary: fc.integer({ min: 0, max: 4 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) });
const u32 = fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));

function body(parts: (b: buffer) => void): Buffer {
  const b = buf_new(70_000);
  parts(b);
  return Buffer.from(b.data.subarray(0, b.len));
}

/** Data whose length field may lie about what follows. */
const dataArb = fc.record({
  id: chanId,
  bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 100 }), fc.uint8Array({ minLength: 500, maxLength: 4000 })),
  lie: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: u32 }),
});

const msgArb: fc.Arbitrary<Msg> = fc.oneof(
  fc
    .record({
      name: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("test-chan", "session", "direct-tcpip") }, { weight: 1, arbitrary: fc.constantFrom("", "test-chan\0x", "x".repeat(70)) }),
      rc: u32,
      win: u32,
      maxp: u32,
    })
    .map(({ name, rc, win, maxp }) => ({
      name: "open",
      handler: recv_msg_channel_open,
      body: body((b) => {
        buf_putstring(b, name);
        buf_putint(b, rc);
        buf_putint(b, win);
        buf_putint(b, maxp);
      }),
    })),
  {
    weight: 8,
    arbitrary: dataArb.map(({ id, bytes, lie }) => ({
      name: "data",
      handler: recv_msg_channel_data,
      body: body((b) => {
        buf_putint(b, id);
        buf_putint(b, lie ?? bytes.length);
        buf_putbytes(b, bytes);
      }),
    })),
  },
  fc.record({ d: dataArb, type: fc.constantFrom(1, 2, 0xffffffff) }).map(({ d, type }) => ({
    name: "extended",
    handler: clientOnly(recv_msg_channel_extended_data),
    body: body((b) => {
      buf_putint(b, d.id);
      buf_putint(b, type);
      buf_putint(b, d.lie ?? d.bytes.length);
      buf_putbytes(b, d.bytes);
    }),
  })),
  fc.record({ id: chanId, incr: u32 }).map(({ id, incr }) => ({
    name: "adjust",
    handler: recv_msg_channel_window_adjust,
    body: body((b) => {
      buf_putint(b, id);
      buf_putint(b, incr);
    }),
  })),
  chanId.map((id) => ({ name: "eof", handler: recv_msg_channel_eof, body: body((b) => buf_putint(b, id)) })),
  chanId.map((id) => ({ name: "close", handler: recv_msg_channel_close, body: body((b) => buf_putint(b, id)) })),
  fc.record({ id: chanId, req: fc.constantFrom("exit-status", "pty-req", "", "x".repeat(300)), want: fc.integer({ min: 0, max: 255 }) }).map(({ id, req, want }) => ({
    name: "request",
    handler: recv_msg_channel_request,
    body: body((b) => {
      buf_putint(b, id);
      buf_putstring(b, req);
      buf_putbyte(b, want);
    }),
  })),
  fc.record({ id: chanId, rc: u32, win: u32, maxp: u32 }).map(({ id, rc, win, maxp }) => ({
    name: "confirm",
    handler: recv_msg_channel_open_confirmation,
    body: body((b) => {
      buf_putint(b, id);
      buf_putint(b, rc);
      buf_putint(b, win);
      buf_putint(b, maxp);
    }),
  })),
  fc.record({ id: chanId, reason: u32 }).map(({ id, reason }) => ({
    name: "failure",
    handler: recv_msg_channel_open_failure,
    body: body((b) => {
      buf_putint(b, id);
      buf_putint(b, reason);
      buf_putstring(b, "no");
      buf_putstring(b, "");
    }),
  })),
  // Truncated or junk bodies for any handler.
  fc
    .record({
      h: fc.constantFrom(
        recv_msg_channel_open,
        recv_msg_channel_data,
        clientOnly(recv_msg_channel_extended_data),
        recv_msg_channel_window_adjust,
        recv_msg_channel_eof,
        recv_msg_channel_close,
        recv_msg_channel_request,
        recv_msg_channel_open_confirmation,
        recv_msg_channel_open_failure,
      ),
      junk: fc.uint8Array({ maxLength: 24 }),
    })
    .map(({ h, junk }) => ({ name: "junk", handler: h, body: Buffer.from(junk) })),
  // Local events between packets: a pending connect completes, or the loop does its channel I/O.
  fc.constant({ name: "connected", handler: connected, body: Buffer.alloc(0) }),
  fc.constant({ name: "io", handler: io, body: Buffer.alloc(0) }),
);

/** A session as the loop leaves it between packets, with no cipher so replies can be counted. */
function newSession(server: boolean, window: number): sshsession {
  const opts = new runopts();
  opts.recv_window = window;
  const ses = server ? new SvrSession(opts, new svr_runopts()) : new CliSession(opts, new cli_runopts());
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  return ses;
}

function deliver(ses: sshsession, m: Msg): void {
  const b = buf_new(m.body.length);
  buf_putbytes(b, m.body);
  buf_setpos(b, 0);
  ses.payload = b;
  try {
    m.handler(ses);
  } finally {
    ses.payload = null;
  }
}

function drain(ses: sshsession): number {
  let n = 0;
  while (!isempty(ses.writequeue)) {
    dequeue(ses.writequeue);
    n++;
  }
  ses.writequeue_len = 0;
  return n;
}

describe("channel messages from a hostile peer", () => {
  it("act or end the session cleanly, within the windows, losing no byte", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.constantFrom(3000, 24576, 1 << 20), fc.array(msgArb, { maxLength: 25 }), (server, window, msgs) => {
        const ses = newSession(server, window);
        const locals = new Map<Channel, Local>();
        chaninitialise(ses, [chanType("test-chan", locals), chanType("session", locals), pendingType]);
        // One channel of our own awaiting the peer's answer, so confirmations and failures can match.
        const own = new StalledSink();
        const ownType: ChanType = { name: "test-chan", inithandler: null, check_close: null, reqhandler: null, closehandler: null, cleanup: null };
        expect(send_msg_channel_open_init(ses, new StreamFd(own), ownType)).toBe(0);
        locals.set(ses.channels[0]!, { sink: own });
        encrypt_packet(ses);
        // And two the peer opened.
        for (const rc of [10, 11]) {
          deliver(ses, {
            name: "open",
            handler: recv_msg_channel_open,
            body: body((b) => {
              buf_putstring(b, "test-chan");
              buf_putint(b, rc);
              buf_putint(b, 5000);
              buf_putint(b, 2000);
            }),
          });
        }
        expect(ses.chancount).toBe(3);
        drain(ses);
        /** Data bytes each channel accepted (it did not exit on them). */
        const accepted = new Map<Channel, number>();
        for (const m of msgs) {
          const win = new Map(ses.channels.filter((c): c is Channel => c !== null).map((c) => [c, c.transwindow]));
          // The channel this data is for, if it can take data (open, known, not past EOF).
          const target = m.name === "data" && m.body.length >= 8 ? ses.channels[m.body.readUInt32BE(0)] : undefined;
          const taker = target && locals.has(target) && chanfdIsOpen(target.writefd) && target.writebuf !== null && !target.recv_eof ? target : null;
          const before = ses.chancount;
          const exit = cleanly(() => deliver(ses, m));
          const replies = drain(ses);
          // A failed assertion is a clean exit too, but one no peer should be able to cause.
          expect(exit?.exitmsg ?? "").not.toMatch(/^Failed assertion/);
          if (exit !== null) break;
          // At most an answer and a window adjust per message; a loop turn's I/O sends at most
          // its reads' worth of data per channel, then EOF and close.
          expect(replies).toBeLessThanOrEqual(m.name === "io" ? before * (CHANNEL_READS_PER_TURN + 2) : 2);
          const live = ses.channels.filter((c): c is Channel => c !== null);
          expect(ses.chancount).toBe(live.length);
          expect(ses.chancount).toBeLessThanOrEqual(MAX_CHANNELS);
          for (const c of live) {
            expect(c.recvwindow).toBeGreaterThanOrEqual(0);
            expect(c.recvwindow).toBeLessThanOrEqual(c.maxrecvwindow);
            expect(c.transwindow).toBeGreaterThanOrEqual(0);
            expect(c.transwindow).toBeLessThanOrEqual(0xffffffff);
            expect(c.recvmaxpacket).toBeLessThanOrEqual(RECV_MAX_CHANNEL_DATA_LEN);
            if (c.writebuf !== null) expect(cbuf_getused(c.writebuf)).toBeLessThanOrEqual(c.writebuf.size);
            // A window adjust adds what it says, clamped at 2^32-1 (the round trip of the sender's increment).
            if (m.name === "adjust" && m.body.readUInt32BE(0) === c.index && m.body.length === 8) {
              expect(c.transwindow).toBe(Math.min(win.get(c)! + m.body.readUInt32BE(4), 0xffffffff));
            }
          }
          if (taker !== null) accepted.set(taker, (accepted.get(taker) ?? 0) + m.body.readUInt32BE(4));
        }
        // Every byte taken is with the local program or still in the ring.
        for (const [c, n] of accepted) {
          if (ses.channels[c.index] !== c || c.writebuf === null || !chanfdIsOpen(c.writefd)) continue;
          expect(locals.get(c)!.sink.received() + cbuf_getused(c.writebuf)).toBe(n);
        }
        cleanly(() => chancleanup(ses));
      }),
      fuzzParams(200),
    );
  }, fuzzTimeout());
});
