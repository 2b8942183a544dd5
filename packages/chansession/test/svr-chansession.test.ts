// svr-chansession.c's request handlers driven with real session objects: packets go to
// ses.writequeue in clear (no keys yet) and the tests take their payloads out. Children are real
// processes; the connection process "is" the user the tests run as.
import { userInfo } from "node:os";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { fill_passwd } from "@dropbear-ts/auth";
import { buf_getbyte, buf_getint, buf_getstring, buf_new, buf_putbyte, buf_putbytes, buf_putint, buf_putstring, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import { chaninitialise, recv_msg_channel_open, recv_msg_channel_request } from "@dropbear-ts/channel";
import { ChanSess, SvrSession, runopts, svr_runopts, type Channel } from "@dropbear-ts/core";
import { DropbearExit, dequeue, isempty } from "@dropbear-ts/dbutil";
import { SignalPipeFd, StreamFd } from "@dropbear-ts/netio";
import { tcpPair } from "../../../tests/helpers/sockets.js";
import {
  MAX_CMD_LEN,
  MAX_NAME_LEN,
  MAX_TERM_LEN,
  SSH_MSG_CHANNEL_FAILURE,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_REQUEST,
  SSH_MSG_CHANNEL_SUCCESS,
  TRANS_MAX_PAYLOAD_LEN,
} from "@dropbear-ts/options";
import { ChildFd, MAX_EXEC_CMD_LEN, svr_chansess_checksignal, svr_chansessinitialise, svrchansess } from "../src/svr-chansession.js";
import { ECHO, ICANON, VINTR, get_winsize, tcgetattr } from "../src/termios.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// The transport every test session reports as its socket (SSH_CONNECTION is read from it); the
// tests hand packets to the handlers directly, so nothing is sent over it.
let transport: { fd: StreamFd; pair: Awaited<ReturnType<typeof tcpPair>> };
beforeAll(async () => {
  const pair = await tcpPair();
  transport = { fd: new StreamFd(pair.b), pair };
});
afterAll(() => transport.pair.close());

/** A server session past auth, as the current user, with the session channel type. */
function newSession(setup?: (o: svr_runopts) => void): SvrSession {
  const svr_opts = new svr_runopts();
  setup?.(svr_opts);
  const ses = new SvrSession(new runopts(), svr_opts);
  ses.writepayload = buf_new(TRANS_MAX_PAYLOAD_LEN);
  ses.dataallowed = true;
  ses.signal_pipe = new SignalPipeFd();
  ses.sock_in = ses.sock_out = transport.fd;
  ses.svr_ses.addrstring = "127.0.0.1:40000";
  ses.svr_ses.remotehost = "127.0.0.1";
  const me = userInfo().username;
  fill_passwd(ses, me);
  ses.authstate.username = me;
  ses.authstate.authdone = true;
  chaninitialise(ses, [svrchansess]);
  svr_chansessinitialise(ses);
  return ses;
}

/** The payloads queued so far (type byte first), oldest first. */
function takePayloads(ses: SvrSession): Buffer[] {
  const out: Buffer[] = [];
  while (!isempty(ses.writequeue)) {
    const wb = dequeue(ses.writequeue);
    const packet_length = wb.data.readUInt32BE(0);
    const padlen = wb.data[4]!;
    out.push(Buffer.from(wb.data.subarray(5, 5 + packet_length - padlen - 1)));
  }
  ses.writequeue_len = 0;
  return out;
}

/** Run a handler on a payload as process_packet would (pos after the type byte). */
function deliver(ses: SvrSession, payload: Buffer, handler: (ses: SvrSession) => void): void {
  const b: buffer = buf_new(payload.length);
  buf_putbytes(b, payload);
  buf_setpos(b, 0);
  buf_getbyte(b);
  ses.payload = b;
  try {
    handler(ses);
  } finally {
    ses.payload = null;
  }
}

function msg(build: (b: buffer) => void): Buffer {
  const b = buf_new(64 * 1024);
  build(b);
  return Buffer.from(b.data.subarray(0, b.len));
}

const sessions: SvrSession[] = [];

/** Open a session channel (ours is 0) and return it. */
function openSession(ses: SvrSession): Channel {
  deliver(
    ses,
    msg((b) => {
      buf_putbyte(b, SSH_MSG_CHANNEL_OPEN);
      buf_putstring(b, "session");
      buf_putint(b, 7);
      buf_putint(b, 1 << 20);
      buf_putint(b, 32768);
    }),
    recv_msg_channel_open,
  );
  const [confirm] = takePayloads(ses);
  expect(confirm![0]).toBe(SSH_MSG_CHANNEL_OPEN_CONFIRMATION);
  sessions.push(ses);
  return ses.channels[0]!;
}

/** A channel request; returns the reply's message type (or null without one). */
function request(ses: SvrSession, channel: Channel, type: string | Buffer, wantreply: boolean, rest?: (b: buffer) => void): number | null {
  deliver(
    ses,
    msg((b) => {
      buf_putbyte(b, SSH_MSG_CHANNEL_REQUEST);
      buf_putint(b, channel.index);
      buf_putstring(b, type);
      buf_putbyte(b, wantreply ? 1 : 0);
      rest?.(b);
    }),
    recv_msg_channel_request,
  );
  const replies = takePayloads(ses);
  if (replies.length === 0) {
    return null;
  }
  expect(replies).toHaveLength(1);
  return replies[0]![0]!;
}

function modes(...pairs: [number, number][]): Buffer {
  return msg((b) => {
    for (const [op, v] of pairs) {
      buf_putbyte(b, op);
      buf_putint(b, v);
    }
    buf_putbyte(b, 0);
  });
}

/** pty-req fields after want_reply: TERM, size, and the encoded modes. */
function ptyReq(term: string | Buffer, encoded: Buffer, cols = 80, rows = 24): (b: buffer) => void {
  return (b) => {
    buf_putstring(b, term);
    buf_putint(b, cols);
    buf_putint(b, rows);
    buf_putint(b, 0);
    buf_putint(b, 0);
    buf_putstring(b, encoded);
  };
}

const chansess = (ch: Channel): ChanSess => ch.typedata as ChanSess;

/** Reap until the channel's child has exited (SIGCHLD may lag behind; a loaded machine, seconds). */
async function reaped(ses: SvrSession, ch: Channel): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && chansess(ch).exit.exitpid === -1) {
    ses.channel_signal_pending = true;
    svr_chansess_checksignal(ses);
    if (chansess(ch).exit.exitpid === -1) {
      await sleep(10);
    }
  }
  expect(chansess(ch).exit.exitpid).toBe(chansess(ch).pid);
}

/** Everything a child wrote to one of the channel's read fds, up to EOF. */
async function readAll(fd: ChildFd): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let i = 0; i < 1000; i++) {
    let d: Buffer | null;
    try {
      d = fd.read(65536);
    } catch {
      break; // EIO on a pty master once the slave is gone
    }
    if (d !== null && d.length === 0) {
      break;
    }
    if (d !== null) {
      chunks.push(d);
    } else {
      await sleep(5);
    }
  }
  return Buffer.concat(chunks);
}

/**
 * A pty channel's output as the session loop gets it: read what is there, reap on SIGCHLD, and
 * stop once the child is gone and nothing is pending (check_close's flushing rule; the master
 * never reports EOF while our slave is open).
 */
async function drainPty(ses: SvrSession, ch: Channel): Promise<Buffer> {
  const fd = ch.readfd as ChildFd;
  const chunks: Buffer[] = [];
  for (let i = 0; i < 5000; i++) {
    ses.channel_signal_pending = true;
    svr_chansess_checksignal(ses);
    const exited = chansess(ch).exit.exitpid !== -1;
    if (exited && !fd.readReady()) {
      break;
    }
    const d = fd.read(16384);
    if (d !== null && d.length === 0) break;
    if (d !== null) chunks.push(d);
    else await sleep(2);
  }
  expect(chansess(ch).exit.exitpid).toBe(chansess(ch).pid);
  return Buffer.concat(chunks);
}

afterEach(() => {
  for (const ses of sessions.splice(0)) {
    for (const ch of ses.channels) {
      if (ch) {
        for (const fd of [ch.readfd, ch.writefd, ch.errfd]) {
          if (typeof fd !== "number") fd.close();
        }
        // The type's cleanup: logout record, pty fds, child table.
        svrchansess.cleanup!(ses, ch);
      }
    }
  }
});

describe("exec and its exit", () => {
  it("runs the command with stdout and stderr apart, then reports exit-status", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "echo out; echo err >&2; exit 3"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(await readAll(ch.readfd as ChildFd)).toEqual(Buffer.from("out\n"));
    expect(await readAll(ch.errfd as ChildFd)).toEqual(Buffer.from("err\n"));
    await reaped(ses, ch);
    svrchansess.closehandler!(ses, ch);
    const [p] = takePayloads(ses);
    const b = buf_new(p!.length);
    buf_putbytes(b, p!);
    buf_setpos(b, 0);
    expect(buf_getbyte(b)).toBe(SSH_MSG_CHANNEL_REQUEST);
    expect(buf_getint(b)).toBe(7);
    expect(buf_getstring(b).toString()).toBe("exit-status");
    expect(buf_getbyte(b)).toBe(0);
    expect(buf_getint(b)).toBe(3);
  });

  it("reports a signal death as exit-signal with the core-dumped flag", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "kill -TERM $$"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    await reaped(ses, ch);
    svrchansess.closehandler!(ses, ch);
    let [p] = takePayloads(ses);
    expect(p!.subarray(9, 9 + 11).toString()).toBe("exit-signal");
    expect(p!.subarray(9 + 11 + 1 + 4, 9 + 11 + 1 + 4 + 4).toString()).toBe("TERM");
    expect(p![9 + 11 + 1 + 4 + 4]).toBe(0);
    // The core flag goes out as the child's status said.
    chansess(ch).exit.exitcore = true;
    svrchansess.closehandler!(ses, ch);
    [p] = takePayloads(ses);
    expect(p![9 + 11 + 1 + 4 + 4]).toBe(1);
  });

  it("gives the child Dropbear's environment, cleared, in the user's home", async () => {
    const ses = newSession();
    // sh reads no rc file (bash reads ~/.bashrc when SSH_CLIENT is set), so env shows ours exactly.
    ses.authstate.pw_shell = "/bin/sh";
    const ch = openSession(ses);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LC_TIME"), buf_putstring(b, "C")))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "env; pwd"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    const out = (await readAll(ch.readfd as ChildFd)).toString();
    const names = out
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => l.split("=")[0]);
    const a = ses.authstate;
    expect(out).toContain(`USER=${a.pw_name}\n`);
    expect(out).toContain(`LOGNAME=${a.pw_name}\n`);
    expect(out).toContain(`HOME=${a.pw_dir}\n`);
    expect(out).toContain(`MAIL=/var/mail/${a.pw_name}\n`);
    expect(out).toContain("LC_TIME=C\n");
    expect(out).toMatch(process.getuid!() === 0 ? /^PATH=\/usr\/sbin:\/usr\/bin:\/sbin:\/bin$/m : /^PATH=\/usr\/bin:\/bin$/m);
    expect(out).toContain("SHELL=/bin/sh\n");
    // "remoteip remoteport localip localport" of the transport socket.
    const peer = transport.pair.a.localPort;
    const local = transport.pair.b.localPort;
    expect(out).toContain(`SSH_CONNECTION=127.0.0.1 ${peer} 127.0.0.1 ${local}\n`);
    expect(out).toContain(`SSH_CLIENT=127.0.0.1 ${peer} ${local}\n`);
    expect(out.trimEnd().split("\n").at(-1)).toBe(a.pw_dir);
    // Nothing of ours leaks in (our test environment has VITEST and friends).
    expect(names).not.toContain("VITEST");
    await reaped(ses, ch);
  });
});

describe("a home directory that cannot be entered", () => {
  it("starts the child in / with Dropbear's message on its stderr", async () => {
    const ses = newSession();
    ses.authstate.pw_shell = "/bin/sh";
    ses.authstate.pw_dir = "/nonexistent-dbts-home";
    const ch = openSession(ses);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "pwd"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect((await readAll(ch.readfd as ChildFd)).toString()).toBe("/\n");
    expect((await readAll(ch.errfd as ChildFd)).toString()).toBe("Failed chdir '/nonexistent-dbts-home': No such file or directory\n");
    await reaped(ses, ch);
  });
});

describe("requests Dropbear refuses or ends the session over", () => {
  it("refuses a second command on the channel", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "true"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "true"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "shell", true)).toBe(SSH_MSG_CHANNEL_FAILURE);
    await reaped(ses, ch);
  });

  it("refuses an unknown subsystem, then still runs a command", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "subsystem", true, (b) => buf_putstring(b, "nosuchsubsystem"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(chansess(ch).cmd).toBeNull();
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "true"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    await reaped(ses, ch);
  });

  it("refuses a type longer than MAX_NAME_LEN, and a command past MAX_EXEC_CMD_LEN without ending the session; runs one past C's MAX_CMD_LEN", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "e".repeat(MAX_NAME_LEN + 1), true)).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(chansess(ch).pid).toBe(0);
    expect(request(ses, ch, "exec", true, (b) => buf_putint(b, MAX_EXEC_CMD_LEN + 1))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(chansess(ch).pid).toBe(0);
    // C reads the command as any string (at most MAX_STRING_LEN = MAX_CMD_LEN) and ends the connection past it.
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, `exit 3 ${"#".repeat(MAX_CMD_LEN * 2)}`))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    await reaped(ses, ch);
    expect(chansess(ch).exit.exitstatus).toBe(3);
  });

  it("refuses x11-req, unknown types, and env other than the locale", () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "x11-req", true, (b) => (buf_putbyte(b, 0), buf_putstring(b, "MIT-MAGIC-COOKIE-1"), buf_putstring(b, "00"), buf_putint(b, 0)))).toBe(
      SSH_MSG_CHANNEL_FAILURE,
    );
    expect(request(ses, ch, "no-such-request@example.com", true)).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "no-such-request@example.com", false)).toBeNull();
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LD_PRELOAD"), buf_putstring(b, "/tmp/x.so")))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LANG"), buf_putstring(b, "C\0x")))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LANG"), buf_putstring(b, "x".repeat(1000))))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LANG"), buf_putstring(b, "C.UTF-8")))).toBe(SSH_MSG_CHANNEL_SUCCESS);
  });

  it("refuses, and does not disconnect on, an env request that is too long or cut short (Dropbear never reads one)", () => {
    const ses = newSession();
    const ch = openSession(ses);
    // Longer than MAX_STRING_LEN: ssh -o SetEnv=LC_X=<10000 bytes> sends this.
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LC_X"), buf_putstring(b, "x".repeat(10_000))))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "N".repeat(10_000)), buf_putstring(b, "C")))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => buf_putstring(b, "LANG"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LANG"), buf_putint(b, 100), buf_putstring(b, "C")))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true)).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "env", true, (b) => (buf_putstring(b, "LANG"), buf_putstring(b, "C.UTF-8")))).toBe(SSH_MSG_CHANNEL_SUCCESS);
  });

  it("refuses signal before a child, with an unknown name, and for a forced command", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "signal", true, (b) => buf_putstring(b, "TERM"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "sleep 5"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(request(ses, ch, "signal", true, (b) => buf_putstring(b, "NOSUCHSIG"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "signal", true, (b) => buf_putstring(b, "SIGTERM"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "signal", true, (b) => buf_putstring(b, "TERM"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    await reaped(ses, ch);
    expect(chansess(ch).exit.exitsignal).toBe(15);
    // Once reaped, the pid may be someone else's: no more signals.
    expect(request(ses, ch, "signal", true, (b) => buf_putstring(b, "TERM"))).toBe(SSH_MSG_CHANNEL_FAILURE);

    const forced = newSession((o) => (o.forced_command = "sleep 5"));
    const fch = openSession(forced);
    expect(request(forced, fch, "exec", true, (b) => buf_putstring(b, "true"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(chansess(fch).cmd!.toString()).toBe("sleep 5");
    expect(chansess(fch).original_command!.toString()).toBe("true");
    expect(request(forced, fch, "signal", true, (b) => buf_putstring(b, "KILL"))).toBe(SSH_MSG_CHANNEL_FAILURE);
    // A pid of 0 would signal this whole process group: checked first.
    expect(chansess(fch).pid).toBeGreaterThan(1);
    process.kill(chansess(fch).pid, "SIGKILL");
    await reaped(forced, fch);
  });

  it("answers nothing on a channel we have closed, and starts nothing there", async () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "true"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    await reaped(ses, ch);
    const pid = chansess(ch).pid;
    ch.sent_close = true; // as send_msg_channel_close leaves it
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "touch /tmp/never"))).toBeNull();
    expect(request(ses, ch, "signal", true, (b) => buf_putstring(b, "KILL"))).toBeNull();
    expect(request(ses, ch, "window-change", true, (b) => (buf_putint(b, 1), buf_putint(b, 1), buf_putint(b, 1), buf_putint(b, 1)))).toBeNull();
    expect(chansess(ch).pid).toBe(pid);
    // A fresh session closed by us (the client's EOF came first): its exec starts nothing.
    const fresh = newSession();
    const fch = openSession(fresh);
    fch.sent_close = true;
    expect(request(fresh, fch, "exec", true, (b) => buf_putstring(b, "touch /tmp/never"))).toBeNull();
    expect(chansess(fch).pid).toBe(0);
  });

  it("ends the session on a truncated request, as C's buffer reads do", () => {
    const ses = newSession();
    const ch = openSession(ses);
    const truncated = msg((b) => {
      buf_putbyte(b, SSH_MSG_CHANNEL_REQUEST);
      buf_putint(b, ch.index);
      buf_putstring(b, "exec");
    });
    expect(() => deliver(ses, truncated, recv_msg_channel_request)).toThrow(DropbearExit);
    expect(() => request(ses, ch, "window-change", true)).not.toThrow(); // no pty: refused before reading
    expect(() => request(ses, ch, "exec", true, (b) => (buf_putint(b, 100), buf_putstring(b, "true")))).toThrow(DropbearExit);
  });
});

describe("pty-req and window-change", () => {
  it("allocates a pty with the size and modes asked for", () => {
    const ses = newSession();
    const ch = openSession(ses);
    // ECHO off, VINTR ^B, ICANON on; opcode 130 is unknown (skipped), 128 is a speed (ignored).
    const m = modes([53, 0], [1, 2], [51, 1], [130, 7], [128, 38400]);
    expect(request(ses, ch, "pty-req", true, ptyReq("xterm", m, 100, 30))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    const cs = chansess(ch);
    expect(cs.tty).toMatch(/^\/dev\/pts\/\d+$/);
    const t = tcgetattr(cs.master)!;
    expect(t.c_lflag & ECHO).toBe(0);
    expect(t.c_lflag & ICANON).toBe(ICANON);
    expect(t.getcc(VINTR)).toBe(2);
    expect(get_winsize(cs.master)).toEqual({ ws_row: 30, ws_col: 100, ws_xpixel: 0, ws_ypixel: 0 });
    // Huge values are truncated to the 16 bits a winsize holds, never an exception.
    expect(
      request(ses, ch, "window-change", true, (b) => {
        buf_putint(b, 0xffffffff);
        buf_putint(b, 0x10019);
        buf_putint(b, 0);
        buf_putint(b, 0);
      }),
    ).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(get_winsize(cs.master)).toMatchObject({ ws_row: 0x19, ws_col: 0xffff });
  });

  it("sends a break (RFC 4335) on a pty, and refuses one without", () => {
    const ses = newSession();
    const ch = openSession(ses);
    const brk = (b: buffer) => buf_putint(b, 1000);
    expect(request(ses, ch, "break", true, brk)).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "pty-req", true, ptyReq("xterm", modes()))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(request(ses, ch, "break", true, brk)).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(request(ses, ch, "break", false, brk)).toBeNull();
    // Cut short (no break-length, or part of one): refused and the session goes on, as
    // Dropbear refuses every break without reading it (sshd would end the session).
    expect(request(ses, ch, "break", true)).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "break", true, (b) => buf_putbyte(b, 0))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(request(ses, ch, "break", false)).toBeNull();
    expect(request(ses, ch, "break", true, brk)).toBe(SSH_MSG_CHANNEL_SUCCESS);
  });

  it("ends the session on a modes string whose length does not match, and on a second pty-req", () => {
    const ses = newSession();
    const ch = openSession(ses);
    const bad = msg((b) => {
      buf_putstring(b, "xterm");
      for (let i = 0; i < 4; i++) buf_putint(b, 0);
      buf_putint(b, 100); // claims 100 bytes of modes, has 2
      buf_putbyte(b, 53);
      buf_putbyte(b, 0);
    });
    expect(() => request(ses, ch, "pty-req", true, (b) => buf_putbytes(b, bad))).toThrow(/Bad term mode string/);

    const ses2 = newSession();
    const ch2 = openSession(ses2);
    expect(request(ses2, ch2, "pty-req", true, ptyReq("vt100", modes()))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(() => request(ses2, ch2, "pty-req", true, ptyReq("vt100", modes()))).toThrow(/Multiple pty requests/);
  });

  it("ends the session on a modes string without TTY_OP_END", () => {
    const ses = newSession();
    const ch = openSession(ses);
    const noEnd = Buffer.from([53, 0, 0, 0, 0]);
    expect(() => request(ses, ch, "pty-req", true, ptyReq("xterm", noEnd))).toThrow(/Bad buf_getbyte/);
  });

  it("refuses a TERM longer than MAX_TERM_LEN; the shell then has no pty and fails", () => {
    const ses = newSession();
    const ch = openSession(ses);
    expect(request(ses, ch, "pty-req", true, ptyReq("x".repeat(MAX_TERM_LEN + 1), modes()))).toBe(SSH_MSG_CHANNEL_FAILURE);
    expect(chansess(ch).master).toBe(-1);
    expect(request(ses, ch, "shell", true)).toBe(SSH_MSG_CHANNEL_FAILURE);
  });

  it("delivers output larger than the pty's buffers whole, the child's last bytes included", async () => {
    const ses = newSession((o) => (o.domotd = false));
    ses.authstate.pw_shell = "/bin/sh";
    const ch = openSession(ses);
    expect(request(ses, ch, "pty-req", true, ptyReq("xterm", modes()))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, "head -c 30000 /dev/zero | tr '\\0' A; echo END"))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    const out = (await drainPty(ses, ch)).toString();
    expect(out.length).toBe(30000 + 5);
    expect(out.endsWith("AEND\r\n")).toBe(true);
  });

  it("runs the command on the pty as its controlling terminal", async () => {
    const ses = newSession((o) => (o.domotd = false));
    const ch = openSession(ses);
    expect(request(ses, ch, "pty-req", true, ptyReq("xterm", modes()))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    const tty = chansess(ch).tty!;
    expect(request(ses, ch, "exec", true, (b) => buf_putstring(b, 'tty; echo "$TERM $SSH_TTY"; ps -o tty= -p $$'))).toBe(SSH_MSG_CHANNEL_SUCCESS);
    // The channel writes to a dup of the master, so the client's EOF cannot close the output side.
    expect(ch.readfd).not.toBe(ch.writefd);
    expect(ch.errfd).toBe(-1);
    const out = (await drainPty(ses, ch)).toString();
    expect(out).toBe(`${tty}\r\nxterm ${tty}\r\n${tty.slice(5)}\r\n`);
    expect(chansess(ch).exit.exitstatus).toBe(0);
  });
});
