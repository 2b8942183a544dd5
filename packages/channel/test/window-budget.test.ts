import { buf_getbyte, buf_getint, buf_new, buf_putbytes, buf_putint, buf_putstring, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import { MAX_SESSION_READ_AHEAD, MAX_SESSION_RECV_WINDOW, SvrSession, runopts, svr_runopts, type ChanType, type sshsession } from "@dropbear-ts/core";
import { dequeue, isempty } from "@dropbear-ts/dbutil";
import { DEFAULT_RECV_WINDOW, MAX_CHANNELS, SSH_MSG_CHANNEL_OPEN_CONFIRMATION, TRANS_MAX_PAYLOAD_LEN } from "@dropbear-ts/options";
import { describe, expect, it } from "vitest";
import type { Fd, StreamFd } from "@dropbear-ts/netio";
import { RECV_MAX_CHANNEL_DATA_LEN, chaninitialise, recv_msg_channel_open, setchannelfds } from "../src/index.js";

// What one session can make us buffer in channel rings: each channel holds at most the window it
// granted, so the session's total is bounded by MAX_SESSION_RECV_WINDOW plus Dropbear's 24 KiB
// default for each channel opened after the budget ran out, not MAX_CHANNELS × -W.

function session(window: number): sshsession {
  const opts = new runopts();
  opts.recv_window = window;
  const ses = new SvrSession(opts, new svr_runopts());
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  return ses;
}

/** The windows granted in the OPEN_CONFIRMATIONs queued since the last call. */
function confirmedWindows(ses: sshsession): number[] {
  const out: number[] = [];
  while (!isempty(ses.writequeue)) {
    const wb = dequeue(ses.writequeue);
    const len = wb.data.readUInt32BE(0);
    const padlen = wb.data[4]!;
    const p: buffer = buf_new(len - padlen - 1);
    buf_putbytes(p, wb.data.subarray(5, 5 + len - padlen - 1));
    buf_setpos(p, 0);
    expect(buf_getbyte(p)).toBe(SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
    buf_getint(p);
    buf_getint(p);
    out.push(buf_getint(p));
  }
  ses.writequeue_len = 0;
  return out;
}

const plainType: ChanType = { name: "test-chan", inithandler: () => 0, check_close: null, reqhandler: null, closehandler: null, cleanup: null };

function openFromPeer(ses: sshsession, remotechan: number): void {
  const b = buf_new(RECV_MAX_CHANNEL_DATA_LEN);
  buf_putstring(b, "test-chan");
  buf_putint(b, remotechan);
  buf_putint(b, 100_000);
  buf_putint(b, 40_000);
  buf_setpos(b, 0);
  ses.payload = b;
  recv_msg_channel_open(ses);
  ses.payload = null;
}

describe("the session's receive window budget", () => {
  it("1000 channels at a 1 MiB -W: the first 64 get 1 MiB, the rest Dropbear's 24 KiB; 88 MiB in all, not 1 GiB", () => {
    const ses = session(1024 * 1024);
    chaninitialise(ses, [plainType]);
    for (let i = 0; i < MAX_CHANNELS; i++) openFromPeer(ses, i);
    const windows = confirmedWindows(ses);
    expect(windows).toHaveLength(MAX_CHANNELS);
    const full = MAX_SESSION_RECV_WINDOW / (1024 * 1024);
    expect(windows.slice(0, full).every((w) => w === 1024 * 1024)).toBe(true);
    expect(windows.slice(full).every((w) => w === DEFAULT_RECV_WINDOW)).toBe(true);
    const total = windows.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(MAX_SESSION_RECV_WINDOW + MAX_CHANNELS * DEFAULT_RECV_WINDOW);
    // Each ring is the size of the window its channel grants.
    for (const ch of ses.channels) {
      if (ch) expect(ch.writebuf!.size).toBe(ch.maxrecvwindow);
    }
  });

  it("Dropbear's own default -W is never cut", () => {
    const ses = session(DEFAULT_RECV_WINDOW);
    chaninitialise(ses, [plainType]);
    for (let i = 0; i < MAX_CHANNELS; i++) openFromPeer(ses, i);
    expect(confirmedWindows(ses)).toEqual(new Array<number>(MAX_CHANNELS).fill(DEFAULT_RECV_WINDOW));
  });

  it("a budget not reached by whole windows: the channel that reaches it gets what is left", () => {
    const w = 10 * 1024 * 1024; // -W's largest
    const ses = session(w);
    chaninitialise(ses, [plainType]);
    for (let i = 0; i < 8; i++) openFromPeer(ses, i);
    expect(confirmedWindows(ses)).toEqual([w, w, w, w, w, w, MAX_SESSION_RECV_WINDOW - 6 * w, DEFAULT_RECV_WINDOW]);
  });
});

// And the other way: what the channels' local fds may read ahead of the loop, together.
describe("the session's read-ahead budget", () => {
  /** `n` channels opened by the peer (window 100 000 each), each with a stand-in fd that keeps the read-ahead it was given. */
  function withFds(n: number): { ses: sshsession; given: () => number[] } {
    const ses = session(DEFAULT_RECV_WINDOW);
    chaninitialise(ses, [plainType]);
    const fds: { max: number }[] = [];
    for (let i = 0; i < n; i++) {
      openFromPeer(ses, i);
      const fd = { max: -1, setReadAhead(max: number) { this.max = max; } };
      fds.push(fd);
      ses.channels[i]!.readfd = fd as unknown as StreamFd;
    }
    confirmedWindows(ses);
    return { ses, given: () => fds.map((f) => f.max) };
  }

  const turn = (ses: sshsession, allow_reads = true): void => setchannelfds(ses, new Set<Fd>(), new Set<Fd>(), allow_reads);

  it("a few channels read ahead as far as their windows", () => {
    const { ses, given } = withFds(30);
    turn(ses);
    expect(given()).toEqual(new Array<number>(30).fill(100_000));
  });

  it("many share MAX_SESSION_READ_AHEAD evenly; channels that may not send take no share", () => {
    const { ses, given } = withFds(MAX_CHANNELS);
    turn(ses);
    const share = Math.floor(MAX_SESSION_READ_AHEAD / MAX_CHANNELS);
    expect(share).toBeGreaterThanOrEqual(16 * 1024);
    expect(given()).toEqual(new Array<number>(MAX_CHANNELS).fill(share));
    expect(given().reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(MAX_SESSION_READ_AHEAD);
    // Half of them out of window: the other half share the budget.
    for (let i = 0; i < MAX_CHANNELS; i += 2) ses.channels[i]!.transwindow = 0;
    turn(ses);
    const half = Math.min(100_000, Math.floor(MAX_SESSION_READ_AHEAD / (MAX_CHANNELS / 2)));
    expect(given()).toEqual(Array.from({ length: MAX_CHANNELS }, (_, i) => (i % 2 === 0 ? 0 : half)));
    // With the write queue full, none reads ahead.
    turn(ses, false);
    expect(given().every((m) => m === 0)).toBe(true);
  });
});
