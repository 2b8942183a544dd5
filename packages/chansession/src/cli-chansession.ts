import { closeSync, constants as fsConstants, createReadStream, createWriteStream, fstatSync, openSync, readFileSync, readlinkSync, readSync, writeSync } from "node:fs";
import * as net from "node:net";
import { constants as osConstants } from "node:os";
import { Readable, Writable } from "node:stream";
import { cli_setup_agent } from "@dropbear-ts/agentfwd";
import { buf_getbool, buf_getint, buf_getptr, buf_getstring, buf_incrpos, buf_putbyte, buf_putint, buf_putstring, buf_setpos, cbuf_new } from "@dropbear-ts/buffer";
import { send_msg_channel_close, send_msg_channel_failure, send_msg_channel_open_init, start_send_channel_request, streamChannelGone, streamChannelOpened, streamChannelRefused } from "@dropbear-ts/channel";
import { FD_CLOSED, FD_UNINIT, chanfdIsOpen, openFailureText, type ChanType, type Channel, type StreamChannel, type chanfd, type CliSession } from "@dropbear-ts/core";
import { EXIT_FAILURE, LOG_INFO, LOG_WARNING, TRACE, atomicio, cleantext, dropbear_exit, dropbear_log, dup_cloexec, envBytes, libcFunc, outOfResources, readInterruptibly, sameOpenFile, stopWithDefaultSignals } from "@dropbear-ts/dbutil";
import { dropbear_prio, StreamFd, socketStreamOptions } from "@dropbear-ts/netio";
import { DROPBEAR_ESCAPE_CHAR, DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import {
  TERMCODE_CONTROL,
  TERMCODE_CONTROLCHAR,
  TERMCODE_INPUT,
  TERMCODE_LOCAL,
  TERMCODE_OUTPUT,
  MAX_TERMCODE,
  termcodes,
} from "./termcodes.js";
import {
  ECHO,
  ECHOE,
  ECHOK,
  ECHONL,
  ICANON,
  ICRNL,
  IEXTEN,
  IGNCR,
  IGNPAR,
  INLCR,
  ISIG,
  ISTRIP,
  IUCLC,
  IXANY,
  IXOFF,
  IXON,
  OPOST,
  TCSADRAIN,
  VMIN,
  VTIME,
  get_winsize,
  tcgetattr,
  tcsetattr,
  termios,
} from "./termios.js";

// The client's session channel (cli-chansession.c): the remote command or shell wired to our
// stdin/stdout/stderr, the pty request with our terminal's modes and size, raw mode on the
// local terminal, window changes, exit-status, and the "~." escapes.

const STDIN_FILENO = 0;
const STDOUT_FILENO = 1;
const STDERR_FILENO = 2;

const F_GETFL = 3;
const F_SETFL = 4;

type FcntlFn = (fd: number, cmd: number, ...rest: unknown[]) => number;

function fcntl(): FcntlFn {
  return libcFunc<FcntlFn>("int fcntl(int fd, int cmd, ...)");
}

/** Set in /proc's flags of a descriptor with FD_CLOEXEC; not a status flag (F_GETFL has it not). */
const O_CLOEXEC = 0o2000000;

/**
 * fcntl(fd, F_GETFL): a file's status flags, or -1 (fd not open). Read from Linux's
 * /proc/self/fdinfo when it is there: the client asks before it connects, and loading the FFI
 * for fcntl then cost about 5 ms on that path (it is loaded later anyway, off it).
 */
export function getFdFlags(fd: number): number {
  try {
    const flags = /^flags:\s*(0[0-7]*)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "latin1"));
    if (flags !== null) {
      return Number.parseInt(flags[1]!, 8) & ~O_CLOEXEC;
    }
  } catch {
    // No /proc, or fd not open: fcntl says which.
  }
  return fcntl()(fd, F_GETFL);
}

/**
 * fcntl(fd, F_SETFL, flags); -1 is ignored (nothing was saved). Out of descriptors the FFI may
 * not load (its files cannot be opened): the flags then stay, and the exit goes on.
 */
export function setFdFlags(fd: number, flags: number): void {
  if (flags >= 0) {
    try {
      fcntl()(fd, F_SETFL, "int", flags);
    } catch (e) {
      if (outOfResources(e) === null) throw e;
    }
  }
}

/**
 * A non-blocking handle on a private copy of fd 0, 1 or 2 for the session loop. The copy keeps
 * the loop from ever closing the terminal (or pipe) we were given: closing the handle closes
 * only the copy, so tcsetattr on fd 0 and our log lines on fd 2 still work to the end.
 *
 * Node's process.stdout/stderr are synchronous for ttys, files and pipes, which would stall the
 * whole loop on a slow reader; instead: pipes and sockets become libuv pipe handles
 * (non-blocking), a terminal a tty.ReadStream or a write-only tty.WriteStream made non-blocking
 * (libuv reopens the terminal so the shared file description stays blocking for others; one it
 * cannot reopen, ttyReopens, keeps an fs stream as other devices do), a regular
 * file is read and written at once as C does (fileStream: a file never holds a read or write for
 * long), and everything else (other devices) an fs stream, whose blocking I/O runs in the thread
 * pool one write at a time, in order; but /dev/null none at all (nullStream). Output to a pipe,
 * socket or terminal is not gathered per turn (gatherWrites), so stdout and stderr on one keep
 * the server's order. Returns null when the fd is not open. `flagsBack` (not -1): the file's
 * flags as the session found them, put back as a pipe or socket handle lets its copy go
 * (restoreSharedFlags).
 */
function openStdioFd(fd: number, forWrite: boolean, flagsBack = -1): StreamFd | null {
  const copy = dup_cloexec(fd);
  if (copy < 0) {
    return null;
  }
  try {
    // On demand: a server's bundle carries this client code but never needs node:tty.
    const tty = process.getBuiltinModule("node:tty");
    if (!forWrite && tty.isatty(copy)) {
      return new StreamFd(new tty.ReadStream(copy, { highWaterMark: 65536 } as net.SocketConstructorOpts));
    }
    if (forWrite && tty.isatty(copy) && ttyReopens(copy)) {
      const ws = new tty.WriteStream(copy);
      // Node makes a terminal's writes blocking, which a terminal stopped with ^S would turn into
      // a stalled loop; its internal handle is the only way back (no public API undoes it).
      (ws as unknown as { _handle: { setBlocking(blocking: boolean): number } })._handle.setBlocking(false);
      const h = new StreamFd(ws, null, true);
      h.gatherWrites = false;
      return h;
    }
    const st = fstatSync(copy);
    if (st.isCharacterDevice() && st.rdev === DEV_NULL_RDEV) {
      closeSync(copy);
      return nullStream(forWrite);
    }
    if (st.isFIFO() || st.isSocket()) {
      const sock = new net.Socket({ fd: copy, readable: !forWrite, writable: forWrite, allowHalfOpen: true, ...socketStreamOptions });
      const h = new StreamFd(sock);
      h.gatherWrites = false;
      if (flagsBack >= 0) {
        // Also at an exit that no longer waits for a reader that stopped (EXIT_FLUSH_MS): the
        // loop is done writing then. Not once the copy is gone: its number may be another file's.
        const restore = (): void => {
          forget();
          restoreSharedFlags(copy, flagsBack);
        };
        const forget = (): void => {
          process.removeListener("exit", restore);
          sock.removeListener("close", forget);
        };
        process.once("exit", restore);
        sock.once("close", forget);
        h.beforeRelease = restore;
      }
      return h;
    }
    if (st.isFile()) {
      return new StreamFd(fileStream(copy, forWrite));
    }
    if (forWrite) {
      return new StreamFd(createWriteStream("", { fd: copy }));
    }
    return new StreamFd(createReadStream("", { fd: copy, highWaterMark: 65536 }));
  } catch (e) {
    TRACE(() => `openStdioFd ${fd}: ${String(e)}`);
    try {
      closeSync(copy);
    } catch {
      // already gone
    }
    return null;
  }
}

/**
 * Put back the flags of the file under our copy of fd 1 as the copy goes. libuv made that file
 * non-blocking for every process sharing it, and fd 1 itself no longer refers to it by the time
 * cli_session_cleanup restores fd 1 (Fd.copyOf: it is /dev/null by then), where C restores
 * through a copy it keeps. Left non-blocking, the caller's next writer to the pipe meets EAGAIN
 * (`(dbclient host cmd; cat big) | less`: "Resource temporarily unavailable"). A file our stdin
 * or stderr shares is left to cli_session_cleanup, which restores it through them: their
 * handles may still be using it.
 */
function restoreSharedFlags(copy: number, flags: number): void {
  if (sameOpenFile(copy, STDIN_FILENO) !== null || sameOpenFile(copy, STDERR_FILENO) !== null) {
    return;
  }
  setFdFlags(copy, flags);
}

/**
 * Whether libuv can open the terminal under `fd` again, as its tty handle does to get a file
 * description of its own (one it can make non-blocking without touching the shell's): the path
 * the fd names, in the fd's access mode. When it cannot (a terminal another user owns after
 * su, say), libuv's handle would write blocking, or spin on a non-blocking fd while the terminal
 * is stopped, so such a terminal keeps its fs stream.
 */
function ttyReopens(fd: number): boolean {
  // Linux's O_ACCMODE, which node:fs's constants lack.
  const O_ACCMODE = 3;
  try {
    const path = readlinkSync(`/proc/self/fd/${fd}`);
    // A pty's master side is never reopened.
    if (path === "/dev/ptmx") {
      return false;
    }
    const flags = getFdFlags(fd);
    if (flags < 0) {
      return false;
    }
    closeSync(openSync(path, (flags & O_ACCMODE) | fsConstants.O_NOCTTY));
    return true;
  } catch {
    return false;
  }
}

/** Bytes read from a regular file at a time: what a pipe or socket handle reads. */
const FILE_READ_CHUNK = 65536;

/**
 * A regular file (`dbclient host cmd <in >out 2>err`) as C reads and writes it: read() when the
 * channel wants more, write() of each chunk at once, at the file's own offset (so `>>` appends).
 * Not an fs stream: the first loads a dozen of Node's modules and starts libuv's thread pool,
 * 8 ms of CPU in a run of 100.
 */
function fileStream(fd: number, forWrite: boolean): Readable | Writable {
  const destroy = (err: Error | null, done: (e: Error | null) => void): void => {
    try {
      closeSync(fd);
    } catch {
      // already gone
    }
    done(err);
  };
  if (forWrite) {
    return new Writable({
      write(chunk: Buffer, _enc, done) {
        try {
          atomicio(writeSync, fd, chunk);
          done();
        } catch (e) {
          done(e as Error);
        }
      },
      destroy,
    });
  }
  return new Readable({
    highWaterMark: FILE_READ_CHUNK,
    read() {
      const buf = Buffer.allocUnsafe(FILE_READ_CHUNK);
      let n: number;
      try {
        n = readSync(fd, buf, 0, FILE_READ_CHUNK, null);
      } catch (e) {
        this.destroy(e as Error);
        return;
      }
      this.push(n > 0 ? buf.subarray(0, n) : null);
    },
    destroy,
  });
}

/** /dev/null's device number (major 1, minor 3), as fstat gives it on Linux. */
const DEV_NULL_RDEV = (1 << 8) | 3;

/**
 * /dev/null as C's read and write find it: input that ends at once, output that is taken and
 * dropped. No fs stream: the first one loads a dozen of Node's modules (fs/promises, readline)
 * and starts libuv's thread pool, 7-11 ms of a `dbclient … </dev/null >/dev/null` run.
 */
function nullStream(forWrite: boolean): StreamFd {
  return new StreamFd(forWrite ? new Writable({ write: (_chunk, _enc, done) => done() }) : Readable.from([]));
}

/** This session's handle on fd 0, 1 or 2, made on first use (see openStdioFd). */
function cliStdioFd(ses: CliSession, fd: number): StreamFd | null {
  const cli_ses = ses.cli_ses;
  const existing = cli_ses.stdiofds[fd];
  if (existing !== undefined && !existing.closed) {
    return existing;
  }
  let h = openStdioFd(fd, fd !== STDIN_FILENO, fd === STDOUT_FILENO ? cli_ses.stdoutflags : -1);
  if (h === null && fd === STDIN_FILENO) {
    // No stdin at all reads as an empty one: C's read gets EBADF and closes it the same way.
    h = nullStream(false);
  }
  if (h !== null) {
    h.sharedDescriptor = true;
    // Stdout's reader waits for its end of file (stdin's writer and stderr's reader do not).
    if (fd === STDOUT_FILENO) {
      h.copyOf = STDOUT_FILENO;
    }
    cli_ses.stdiofds[fd] = h;
  }
  return h;
}

/** A stream still holds output it was handed, or the EOF after it. */
function outputPending(w: Writable): boolean {
  return !w.destroyed && (w.writableLength > 0 || (w.writableEnded && !w.writableFinished));
}

/** The session's stdout/stderr streams that still hold output. */
function pendingStdio(ses: CliSession): Writable[] {
  const streams = ses.cli_ses.stdiofds.filter((f): f is StreamFd => f !== undefined).map((f) => f.stream as Writable);
  return streams.filter((w) => typeof w.write === "function" && outputPending(w));
}

/** How long the terminal stays raw, at most, for output still on its way to it. */
const TTY_RESTORE_FLUSH_MS = 2000;

/**
 * cli_tty_cleanup once what the session wrote has reached the terminal (at most
 * TTY_RESTORE_FLUSH_MS), then `after`. C's writes are in the terminal before it restores the
 * modes; ours can still be in a stream (a terminal's writes run in the thread pool), and would
 * meet the restored output processing: "\r\n" from the remote pty would show as "\r\r\n".
 */
export function cliTtyCleanupAfterOutput(ses: CliSession, after: () => void = () => undefined): void {
  if (ses.cli_ses.tty_raw_mode && pendingStdio(ses).length > 0) {
    void cliFlushStdio(ses, TTY_RESTORE_FLUSH_MS).then(() => {
      cli_tty_cleanup(ses);
      after();
    });
    return;
  }
  cli_tty_cleanup(ses);
  after();
}

/**
 * Wait until what the session handed to our stdout/stderr handles has reached the kernel, as
 * C's writes have by the time it exits; `timeoutMs` null waits as long as the reader takes.
 */
export async function cliFlushStdio(ses: CliSession, timeoutMs: number | null): Promise<void> {
  const waits = pendingStdio(ses)
    .map(
      (w) =>
        new Promise<void>((resolve) => {
          const check = (): void => {
            if (!outputPending(w)) {
              for (const ev of ["drain", "finish", "close", "error"]) w.removeListener(ev, check);
              resolve();
            }
          };
          for (const ev of ["drain", "finish", "close", "error"]) w.on(ev, check);
        }),
    );
  if (waits.length === 0) {
    return;
  }
  const all = Promise.all(waits).then(() => undefined);
  if (timeoutMs === null) {
    return all;
  }
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([all, limit]);
  clearTimeout(timer);
}

/**
 * TS-only: a session channel a library caller opens, on its own streams rather than fds 0-2:
 * what it runs (a command, a subsystem, or a shell when cmd is null), with what pty and
 * environment, and how it ended as the server reports it.
 */
export interface CliChansessRequest extends StreamChannel {
  readonly cmd: string | Uint8Array | null;
  readonly is_subsystem: boolean;
  /** The pty asked for; a size change before the pty-req is sent goes into it. */
  pty: { readonly term: string; readonly cols: number; readonly rows: number } | null;
  readonly env: readonly (readonly [string, string | Uint8Array])[];
  exitstatus: number | null;
  exitsignal: { signal: string; core_dumped: boolean } | null;
  /**
   * The start request (exec, shell or subsystem) goes with want-reply, unlike dbclient's: "sent"
   * while its answer is awaited, "refused" once the server said no (the channel is then closed).
   */
  start: "unsent" | "sent" | "accepted" | "refused";
  /** Signals asked for before the server accepted the start request, sent once it has. */
  readonly signals: string[];
}

/** The library request a session channel carries, or null for dbclient's own session on its stdio. */
function libraryRequest(channel: Channel): CliChansessRequest | null {
  return channel.type === cli_chan_streamsess ? (channel.typedata as CliChansessRequest) : null;
}

/**
 * Requests the server sends on our session: exit-status becomes our exit code; exit-signal is
 * ignored as Dropbear 2026.94 does (a remote signal death leaves the code at 0); anything else
 * wanting a reply is refused. @dropbear cli-chansession.c cli_chansessreq
 */
function cli_chansessreq(ses: CliSession, channel: Channel): void {
  TRACE("enter cli_chansessreq");
  const payload = ses.payload!;
  const rawtype = buf_getstring(payload);
  const wantreply = buf_getbool(payload);
  // C compares with strcmp: the name ends at a NUL.
  const nul = rawtype.indexOf(0);
  const type = (nul >= 0 ? rawtype.subarray(0, nul) : rawtype).toString("latin1");
  const req = libraryRequest(channel);
  if (type === "exit-status" && req !== null) {
    req.exitstatus = buf_getint(payload);
  } else if (type === "exit-status" && startRequests.get(channel)?.start === "refused") {
    TRACE("ignored exit-status after the start request was refused");
  } else if (type === "exit-status") {
    ses.cli_ses.retval = buf_getint(payload);
    TRACE(() => `got exit-status of '${ses.cli_ses.retval}'`);
  } else if (type === "exit-signal" && req !== null) {
    // A library caller is told of the signal (dbclient ignores it, as Dropbear does, reading
    // nothing of it). So that no exit-signal ends a session that dbclient's would go on with,
    // one cut short of its name is ignored as dbclient ignores it, and a missing core-dumped
    // flag reads as false. The name is the server's text, which a caller may well print: only
    // printable ASCII of it is kept, as for the banner and a refused channel's reason.
    const rest = payload.len - payload.pos;
    const namelen = rest >= 4 ? buf_getint(payload) : -1;
    if (namelen >= 0 && namelen <= rest - 4) {
      const signal = cleantext(buf_getptr(payload, namelen), false);
      buf_incrpos(payload, namelen);
      const core_dumped = payload.pos < payload.len && buf_getbool(payload) === 1;
      req.exitsignal = { signal, core_dumped };
    } else {
      TRACE("exit-signal cut short, ignoring it");
    }
  } else if (type === "exit-signal") {
    TRACE("got exit-signal, ignoring it");
  } else {
    TRACE(() => `unknown request '${type}'`);
    if (wantreply) {
      send_msg_channel_failure(ses, channel);
    }
  }
}

/** The session channel is closing: give the terminal back. @dropbear cli-chansession.c cli_closechansess */
function cli_closechansess(ses: CliSession, _channel: Channel): void {
  // The channel may go in channelio, after this turn's cli_sessionloop, and the server may
  // send nothing more: wake the loop so the next turn sees no channel left and exits.
  // (C mostly removes it while handling the server's CLOSE, as its stdout writes rarely wait.)
  ses.signal_pipe?.raise();
  // This channel still counts, so more than one means others remain (forwards).
  const others = ses.chancount > 1;
  // The line goes out after the terminal is back in its modes, as in C.
  cliTtyCleanupAfterOutput(ses, () => {
    if (others) {
      dropbear_log(LOG_INFO, "Waiting for other channels to close...");
    }
  });
}

/**
 * Put our terminal in raw mode (keeping the old modes in cli_ses.saved_tio): every key goes to
 * the remote pty, which does its own echo and line editing. @dropbear cli-chansession.c cli_tty_setup
 */
function cli_tty_setup(ses: CliSession): void {
  TRACE("enter cli_pty_setup");
  const cli_ses = ses.cli_ses;
  if (cli_ses.tty_raw_mode) {
    TRACE("leave cli_tty_setup: already in raw mode!");
    return;
  }
  const tio = tcgetattr(STDIN_FILENO);
  if (tio === null) {
    dropbear_exit("Failed to set raw TTY mode");
  }
  cli_ses.saved_tio = Buffer.from(tio.raw);
  tio.c_iflag |= IGNPAR;
  tio.c_iflag &= ~(ISTRIP | INLCR | IGNCR | ICRNL | IXON | IXANY | IXOFF | IUCLC);
  tio.c_lflag &= ~(ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHONL | IEXTEN);
  tio.c_oflag &= ~OPOST;
  tio.setcc(VMIN, 1);
  tio.setcc(VTIME, 0);
  waitForeground(ses);
  if (tcsetattr(STDIN_FILENO, TCSADRAIN, tio) === -1) {
    dropbear_exit("Failed to set raw TTY mode");
  }
  cli_ses.tty_raw_mode = true;
  TRACE("leave cli_tty_setup");
}

/** How many times waitForeground stops us at most before leaving it to tcsetattr. */
const FOREGROUND_STOPS_MAX = 100;

/**
 * Stop until continued, as C's client is stopped by SIGTSTP or SIGTTOU. A SIGTERM, SIGHUP,
 * SIGINT or SIGQUIT sent meanwhile ends C's client as it is continued (no handler; the shell's
 * `kill %1` sends SIGCONT after it). Ours has Node's listeners, which would only note it: so they
 * are set aside while we are stopped (the terminal is in its own modes then). With a proxy
 * command C has a handler, run once continued (taking the proxy down): ours run then too.
 */
function stopHere(ses: CliSession, sig: number): void {
  if (ses.cli_ses.proxy_cmd_pid > 0) {
    readInterruptibly(() => libcFunc<RaiseFn>("int raise(int sig)")(sig));
  } else {
    stopWithDefaultSignals(sig);
  }
}

/**
 * A background job's tcsetattr on its terminal stops it with SIGTTOU (`dbclient host &`, or `bg`
 * after ~^Z) until the shell gives it the terminal, and starts again once continued: a signal
 * Node's handler took meanwhile (`kill %1`) would never be acted on, as we stop again at once.
 * So we stop ourselves, as the kernel would (stopHere). Bounded: with SIGTTOU blocked, or our
 * process group orphaned, raise() does not stop us, and tcsetattr decides.
 */
function waitForeground(ses: CliSession): void {
  const tcgetpgrp = libcFunc<(fd: number) => number>("int tcgetpgrp(int fd)");
  const getpgrp = libcFunc<() => number>("int getpgrp(void)");
  for (let i = 0; i < FOREGROUND_STOPS_MAX; i++) {
    const fg = tcgetpgrp(STDIN_FILENO);
    if (fg === -1 || fg === getpgrp()) {
      return;
    }
    stopHere(ses, osConstants.signals.SIGTTOU);
  }
}

/** Restore the terminal modes cli_tty_setup saved, if raw mode is on. @dropbear cli-chansession.c cli_tty_cleanup */
export function cli_tty_cleanup(ses: CliSession): void {
  TRACE("enter cli_tty_cleanup");
  const cli_ses = ses.cli_ses;
  if (!cli_ses.tty_raw_mode || cli_ses.saved_tio === null) {
    TRACE("leave cli_tty_cleanup: not in raw mode");
    return;
  }
  if (tcsetattr(STDIN_FILENO, TCSADRAIN, new termios(cli_ses.saved_tio)) === -1) {
    dropbear_log(LOG_WARNING, "Failed restoring TTY");
  } else {
    cli_ses.tty_raw_mode = false;
  }
  TRACE("leave cli_tty_cleanup");
}

/**
 * The pty-req's terminal modes string: for every opcode Linux has, the c_cc value or the flag as
 * 0 or 1, then TTY_OP_END. Baud rates are left out as in Dropbear. Dropbear sends a flag as its
 * bit's value (ECHO as 8); RFC 4254 section 8 says 0 or 1, as OpenSSH and PuTTY send, and
 * Erlang/OTP's daemon refuses the shell after an ECHO of 8 (docs/deviations.md).
 * @dropbear cli-chansession.c put_termcodes
 */
export function put_termcodes(ses: CliSession): void {
  TRACE("enter put_termcodes");
  const wp = ses.writepayload;
  const tio = tcgetattr(STDIN_FILENO);
  if (tio === null) {
    // With -n, /dev/null has no modes to read: nothing is wrong.
    if (!ses.cli_ses.cli_opts.stdin_null) {
      dropbear_log(LOG_WARNING, "Failed reading termmodes");
    }
    buf_putint(wp, 1);
    buf_putbyte(wp, 0);
    return;
  }
  const bufpos1 = wp.pos;
  buf_putint(wp, 0); // the length, filled in below
  for (let sshcode = 1; sshcode < MAX_TERMCODE; sshcode++) {
    const termcode = termcodes[sshcode]!;
    const mapcode = termcode.mapcode;
    let value: number;
    switch (termcode.type) {
      case TERMCODE_CONTROLCHAR:
        value = tio.getcc(mapcode);
        break;
      case TERMCODE_INPUT:
        value = Number((tio.c_iflag & mapcode) !== 0);
        break;
      case TERMCODE_OUTPUT:
        value = Number((tio.c_oflag & mapcode) !== 0);
        break;
      case TERMCODE_LOCAL:
        value = Number((tio.c_lflag & mapcode) !== 0);
        break;
      case TERMCODE_CONTROL:
        value = Number((tio.c_cflag & mapcode) !== 0);
        break;
      default:
        continue;
    }
    buf_putbyte(wp, sshcode);
    buf_putint(wp, value >>> 0);
  }
  buf_putbyte(wp, 0); // TTY_OP_END
  const bufpos2 = wp.pos;
  buf_setpos(wp, bufpos1);
  buf_putint(wp, bufpos2 - bufpos1 - 4);
  buf_setpos(wp, bufpos2);
  TRACE("leave put_termcodes");
}

/** Our terminal's columns, rows and pixel size (80x25 when stdin is no terminal). @dropbear cli-chansession.c put_winsize */
export function put_winsize(ses: CliSession): void {
  const ws = get_winsize(STDIN_FILENO) ?? { ws_row: 25, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
  const wp = ses.writepayload;
  buf_putint(wp, ws.ws_col);
  buf_putint(wp, ws.ws_row);
  buf_putint(wp, ws.ws_xpixel);
  buf_putint(wp, ws.ws_ypixel);
}

/**
 * SIGWINCH: note that the size changed and wake the loop, which sends window-change at its next
 * turn (a Node signal listener runs between loop turns, so this is only a flag as in C).
 * @dropbear cli-chansession.c sigwinch_handler
 */
function sigwinch_handler(ses: CliSession): void {
  ses.cli_ses.winchange = true;
  ses.signal_pipe?.raise();
}

/** Send request `type`, no reply wanted, on every session channel; `put` adds its fields. */
function requestOnSessionChannels(ses: CliSession, type: string, put: () => void): void {
  for (let i = 0; i < ses.chansize; i++) {
    const channel = ses.channels[i];
    if (channel && channel.type === clichansess) {
      sendRequestNoReply(ses, channel, type, put);
    }
  }
}

/**
 * One channel request `type` with no reply wanted; `put` adds its fields to the payload. None
 * once our CLOSE is out (beyond Dropbear, whose SUCCESS and FAILURE alone skip it): the server
 * may free the channel before its own CLOSE reaches us, and a request naming a channel it no
 * longer has ends the whole connection ("Unknown channel"). A window change or signal then
 * has nothing left to act on.
 */
function sendRequestNoReply(ses: CliSession, channel: Channel, type: string, put: () => void): void {
  if (channel.sent_close) {
    TRACE(() => `Skipping ${type} request for closed channel`);
    return;
  }
  start_send_channel_request(ses, channel, type);
  buf_putbyte(ses.writepayload, 0);
  put();
  encrypt_packet(ses);
}

/** Send our new size on every session channel. @dropbear cli-chansession.c cli_chansess_winchange */
export function cli_chansess_winchange(ses: CliSession): void {
  // No reply, as RFC 4254 §6.7 says.
  requestOnSessionChannels(ses, "window-change", () => put_winsize(ses));
  ses.cli_ses.winchange = false;
}

/**
 * RFC 4335's "break" on every session channel, for the ~B escape (beyond Dropbear, as OpenSSH's
 * ssh sends it: no reply wanted, a length of one second).
 */
export function cli_chansess_break(ses: CliSession): void {
  requestOnSessionChannels(ses, "break", () => buf_putint(ses.writepayload, 1000));
  ses.cli_ses.sendbreak = false;
}

/** Ask for a pty with $TERM, our size and our modes, and start watching SIGWINCH. @dropbear cli-chansession.c send_chansess_pty_req */
function send_chansess_pty_req(ses: CliSession, channel: Channel): void {
  TRACE("enter send_chansess_pty_req");
  start_send_channel_request(ses, channel, "pty-req");
  buf_putbyte(ses.writepayload, 0);
  buf_putstring(ses.writepayload, envBytes("TERM") ?? Buffer.from("vt100"));
  put_winsize(ses);
  put_termcodes(ses);
  encrypt_packet(ses);
  process.on("SIGWINCH", () => sigwinch_handler(ses));
  TRACE("leave send_chansess_pty_req");
}

/** exec (or subsystem with -s) of the command, or a shell without one. @dropbear cli-chansession.c send_chansess_shell_req */
function send_chansess_shell_req(ses: CliSession, channel: Channel): void {
  TRACE("enter send_chansess_shell_req");
  const cli_opts = ses.cli_ses.cli_opts;
  let reqtype: string;
  if (cli_opts.cmd !== null) {
    reqtype = cli_opts.is_subsystem ? "subsystem" : "exec";
  } else {
    reqtype = "shell";
  }
  start_send_channel_request(ses, channel, reqtype);
  // Beyond Dropbear, as OpenSSH's ssh: a reply is asked for. C asks none, so a refusal (sshd
  // without that Subsystem) left `sftp -S dbclient` waiting for ever, or ended with status 0.
  buf_putbyte(ses.writepayload, 1);
  startRequests.set(channel, { reqtype, start: "sent" });
  if (cli_opts.cmd !== null) {
    buf_putstring(ses.writepayload, cli_opts.cmd);
  }
  encrypt_packet(ses);
  TRACE("leave send_chansess_shell_req");
}

/**
 * dbclient's own session channels' shell, exec or subsystem request and its answer so far, as a
 * library request's `start`. Once refused, an exit-status (ProFTPD's mod_sftp sends 0 for an exec
 * it does not run) does not undo status 1; OpenSSH's ssh has exited by then.
 */
const startRequests = new WeakMap<Channel, { reqtype: string; start: "sent" | "accepted" | "refused" }>();

/**
 * Wire the channel to our stdio: stdin is read, stdout written, and stderr written from its own
 * ring (extrabuf), which makes errfd a write fd. @dropbear cli-chansession.c cli_init_stdpipe_sess
 */
function cli_init_stdpipe_sess(ses: CliSession, channel: Channel): number {
  channel.extrabuf = cbuf_new(ses.opts.recv_window);
  if (libraryRequest(channel) !== null) {
    streamChannelOpened(channel);
    return 0;
  }
  const orNone = (fd: StreamFd | null): chanfd => fd ?? FD_CLOSED;
  channel.writefd = orNone(cliStdioFd(ses, STDOUT_FILENO));
  channel.readfd = orNone(cliStdioFd(ses, STDIN_FILENO));
  channel.errfd = orNone(cliStdioFd(ses, STDERR_FILENO));
  channel.bidir_fd = false;
  // Beyond Dropbear: with stdout and stderr on one pipe or terminal (2>&1), C writes stderr as
  // it comes while stdout's ring still holds what a slow reader has not taken: its 24 KiB window
  // keeps that small, our 2 MiB one (OUR_DEFAULT_RECV_WINDOW) let stderr arrive megabytes early.
  channel.errfd_joins_writefd = chanfdIsOpen(channel.writefd) && chanfdIsOpen(channel.errfd) && oneOrderedOutput(STDOUT_FILENO, STDERR_FILENO);
  return 0;
}

/**
 * Whether fds `a` and `b` are one pipe, socket or terminal, whose reader sees the bytes written
 * to either in the order they were written. (Not a regular file: its writes never wait, so
 * nothing queues; and two opens of it each keep an offset of their own.)
 */
function oneOrderedOutput(a: number, b: number): boolean {
  const st = sameOpenFile(a, b);
  return st !== null && (st.isFIFO() || st.isSocket() || st.isCharacterDevice());
}

/** The server confirmed our session channel: make the requests and go raw. @dropbear cli-chansession.c cli_initchansess */
function cli_initchansess(ses: CliSession, channel: Channel): number {
  cli_init_stdpipe_sess(ses, channel);
  const req = libraryRequest(channel);
  if (req !== null) {
    cliStreamSessRequests(ses, channel, req);
    return 0;
  }
  const cli_ses = ses.cli_ses;
  const cli_opts = cli_ses.cli_opts;
  if (cli_opts.agent_fwd) {
    cli_setup_agent(ses, channel);
  }
  if (cli_opts.wantpty) {
    send_chansess_pty_req(ses, channel);
    channel.prio = dropbear_prio.DROPBEAR_PRIO_LOWDELAY;
  }
  send_chansess_shell_req(ses, channel);
  // Beyond Dropbear, as ssh -n -tt (mosh's ssh command): with -n our stdin is /dev/null, no
  // terminal to put in raw mode or read keys and escapes from, so the pty is asked for and that is all.
  if (cli_opts.wantpty && !cli_opts.stdin_null) {
    cli_tty_setup(ses);
    channel.read_mangler = (ch, buf) => cli_escape_handler(ses, ch, buf);
    cli_ses.last_char = 0x0d;
  }
  return 0;
}

/**
 * A library caller's session: its environment, pty and command, as dbclient sends them but from
 * the request rather than our terminal and command line (no raw mode, no escapes, no SIGWINCH).
 */
function cliStreamSessRequests(ses: CliSession, channel: Channel, req: CliChansessRequest): void {
  const wp = ses.writepayload;
  for (const [name, value] of req.env) {
    sendRequestNoReply(ses, channel, "env", () => {
      buf_putstring(wp, name);
      buf_putstring(wp, value);
    });
  }
  const pty = req.pty;
  if (pty !== null) {
    sendRequestNoReply(ses, channel, "pty-req", () => {
      buf_putstring(wp, pty.term);
      buf_putint(wp, pty.cols);
      buf_putint(wp, pty.rows);
      buf_putint(wp, 0);
      buf_putint(wp, 0);
      // No terminal of ours to copy modes from: an empty list (TTY_OP_END alone).
      buf_putint(wp, 1);
      buf_putbyte(wp, 0);
    });
    channel.prio = dropbear_prio.DROPBEAR_PRIO_LOWDELAY;
  }
  start_send_channel_request(ses, channel, req.cmd === null ? "shell" : req.is_subsystem ? "subsystem" : "exec");
  // A caller is told of a refusal (dbclient's user sees the session end with no output).
  buf_putbyte(wp, 1);
  if (req.cmd !== null) {
    buf_putstring(wp, req.cmd);
  }
  encrypt_packet(ses);
  req.start = "sent";
}

/**
 * MSG_CHANNEL_SUCCESS or FAILURE, in ignore_recv_response's place: a session's start request
 * (dbclient's or a library caller's) is the first it asks a reply for on its channel, so the
 * first answer there is that request's, and a refusal closes the channel (as OpenSSH's ssh
 * does); a keepalive's answer is ignored, as in Dropbear.
 */
export function cliRecvChannelReply(ses: CliSession, success: boolean): void {
  const payload = ses.payload!;
  // C's ignore_recv_response reads nothing: a reply cut short of its channel number is ignored
  // as any other, never the end of the session.
  if (payload.len - payload.pos < 4) {
    TRACE("Ignored msg_request_response");
    return;
  }
  const id = buf_getint(payload);
  const channel = id < ses.chansize ? ses.channels[id] : null;
  const req = channel ? libraryRequest(channel) : null;
  if (channel && req !== null && req.start === "sent") {
    req.start = success ? "accepted" : "refused";
    if (!success && !channel.sent_close) {
      send_msg_channel_close(ses, channel);
    }
    // Only now is there a command to signal (OpenSSH's sshd answers a signal that comes on the
    // heels of the exec request with killpg's ESRCH, its child not yet in its own process group;
    // under load, for a moment after it has accepted the exec too).
    const pending = req.signals.splice(0);
    if (success) {
      pending.forEach((name) => cliStreamSessSignal(ses, channel, name));
    }
    return;
  }
  // dbclient's start request is the first on its channel to ask a reply (keepalives wait for
  // the channel's init), so the first reply there is its answer.
  const mine = channel ? startRequests.get(channel) : undefined;
  if (channel && mine?.start === "sent") {
    mine.start = success ? "accepted" : "refused";
    if (!success) {
      // OpenSSH's words; its status is 255, ours 1 as for a refused channel open.
      dropbear_log(LOG_WARNING, `${mine.reqtype} request failed on channel ${channel.index}`);
      ses.cli_ses.retval = EXIT_FAILURE;
      if (!channel.sent_close) {
        send_msg_channel_close(ses, channel);
      }
    }
    return;
  }
  TRACE("Ignored msg_request_response");
}

/** A library caller's "signal" for the remote command (RFC 4254 6.9; dbclient sends none), by its name without "SIG". */
export function cliStreamSessSignal(ses: CliSession, channel: Channel, name: string): void {
  sendRequestNoReply(ses, channel, "signal", () => buf_putstring(ses.writepayload, name));
}

/** A library caller's pty changed size: window-change, as cli_chansess_winchange sends ours. */
export function cliStreamSessWinchange(ses: CliSession, channel: Channel, cols: number, rows: number): void {
  sendRequestNoReply(ses, channel, "window-change", () => {
    const wp = ses.writepayload;
    buf_putint(wp, cols);
    buf_putint(wp, rows);
    buf_putint(wp, 0);
    buf_putint(wp, 0);
  });
}

/**
 * TS-only: the server refused our session (or -B) channel. Dropbear's client then ends with
 * status 0 and not a word, as if the command had run; this says why, and exits 1.
 */
function cliChansessOpenFailed(ses: CliSession, channel: Channel, reason: number, text: string): void {
  dropbear_log(LOG_WARNING, `Channel open failed (${channel.type.name}): ${openFailureText(reason, text)}`);
  ses.cli_ses.retval = EXIT_FAILURE;
}

/** The "session" channel type as the client opens it. @dropbear cli-chansession.c clichansess */
export const clichansess: ChanType<CliSession> = {
  name: "session",
  inithandler: cli_initchansess,
  check_close: null,
  reqhandler: cli_chansessreq,
  closehandler: cli_closechansess,
  cleanup: null,
  openfailed: cliChansessOpenFailed,
};

/** A library caller's session channel (cliOpenStreamSess): clichansess without our terminal. */
const cli_chan_streamsess: ChanType<CliSession> = {
  name: "session",
  inithandler: cli_initchansess,
  check_close: null,
  reqhandler: cli_chansessreq,
  closehandler: (ses) => ses.signal_pipe?.raise(),
  cleanup: streamChannelGone,
  openfailed: streamChannelRefused,
};

/**
 * Open a session channel for a library caller; the requests follow its confirmation, and the
 * request hears of the open and the end. DROPBEAR_FAILURE when no channel slot is free.
 */
export function cliOpenStreamSess(ses: CliSession, req: CliChansessRequest): number {
  if (send_msg_channel_open_init(ses, req.readfd, cli_chan_streamsess, req) === DROPBEAR_FAILURE) {
    return DROPBEAR_FAILURE;
  }
  encrypt_packet(ses);
  return DROPBEAR_SUCCESS;
}

/** Open the session channel; the requests follow its confirmation. @dropbear cli-chansession.c cli_send_chansess_request */
export function cli_send_chansess_request(ses: CliSession): void {
  TRACE("enter cli_send_chansess_request");
  // C passes STDIN_FILENO as a placeholder until the open is confirmed. A Node handle on it would
  // start reading at once: a terminal's typed-ahead ^D would then be read as end of file in
  // canonical mode, before cli_initchansess makes the terminal raw. So no handle till then.
  if (send_msg_channel_open_init(ses, FD_UNINIT, clichansess) === DROPBEAR_FAILURE) {
    dropbear_exit("Couldn't open initial channel");
  }
  encrypt_packet(ses);
  TRACE("leave cli_send_chansess_request");
}

/** A -B channel is wired to our stdio exactly as a session channel is. @dropbear cli-chansession.c cli_init_netcat */
function cli_init_netcat(ses: CliSession, channel: Channel): number {
  return cli_init_stdpipe_sess(ses, channel);
}

/** The channel -B opens: direct-tcpip, ending the program as the session channel does. @dropbear cli-chansession.c cli_chan_netcat */
export const cli_chan_netcat: ChanType<CliSession> = {
  name: "direct-tcpip",
  inithandler: cli_init_netcat,
  check_close: null,
  reqhandler: null,
  closehandler: cli_closechansess,
  cleanup: null,
  openfailed: cliChansessOpenFailed,
};

/**
 * -B host:port: ask the server for a direct-tcpip channel to that endpoint, carried on our
 * stdin/stdout (the inner hop of multihop runs this). The originator is given as 127.0.0.1:22,
 * as Dropbear does. @dropbear cli-chansession.c cli_send_netcat_request
 */
export function cli_send_netcat_request(ses: CliSession): void {
  const source_host = "127.0.0.1";
  const source_port = 22;
  TRACE("enter cli_send_netcat_request");
  const cli_opts = ses.cli_ses.cli_opts;
  cli_opts.wantpty = 0;
  // No stdin handle until the open is confirmed, as for the session channel.
  if (send_msg_channel_open_init(ses, FD_UNINIT, cli_chan_netcat) === DROPBEAR_FAILURE) {
    dropbear_exit("Couldn't open initial channel");
  }
  buf_putstring(ses.writepayload, cli_opts.netcat_host!);
  buf_putint(ses.writepayload, cli_opts.netcat_port);
  buf_putstring(ses.writepayload, source_host);
  buf_putint(ses.writepayload, source_port);
  encrypt_packet(ses);
  TRACE("leave cli_send_netcat_request");
}

type RaiseFn = (sig: number) => number;

/**
 * The escape after "~": "." ends the session, ^Z suspends us (terminal restored while
 * stopped, raw again after, and our size resent), "R" starts a rekey, and (beyond Dropbear,
 * as OpenSSH's ssh) "B" sends a break. Returns whether the byte is consumed.
 * @dropbear cli-chansession.c do_escape
 */
function do_escape(ses: CliSession, c: number): boolean {
  switch (c) {
    case 0x2e: // '.'
      dropbear_exit("Terminated");
    // falls through: dropbear_exit never returns
    case 0x1a: // ^Z
      cli_tty_cleanup(ses);
      // raise() stops this thread before it returns; process.kill could let us run on first.
      stopHere(ses, osConstants.signals.SIGTSTP);
      cli_tty_setup(ses);
      // Our size may have changed while stopped; wake the loop so it is sent now.
      ses.cli_ses.winchange = true;
      ses.signal_pipe?.raise();
      return true;
    case 0x52: // 'R'
      TRACE("rekey");
      ses.kexstate.needrekey = true;
      return true;
    case 0x42: // 'B'
      ses.cli_ses.sendbreak = true;
      ses.signal_pipe?.raise();
      return true;
    default:
      return false;
  }
}

/**
 * The read_mangler of a pty session: "~" right after a CR starts an escape. Only reads of a
 * single byte count, so typed keys act but pasted text that contains "~." does not.
 * @dropbear cli-chansession.c cli_escape_handler
 */
export function cli_escape_handler(ses: CliSession, _channel: Channel, buf: Buffer): number {
  const cli_ses = ses.cli_ses;
  const len = buf.length;
  if (len !== 1) {
    cli_ses.last_char = 0;
    return len;
  }
  const c = buf[0]!;
  let skip_char = false;
  if (cli_ses.last_char === DROPBEAR_ESCAPE_CHAR) {
    skip_char = do_escape(ses, c);
    cli_ses.last_char = 0;
  } else if (c === DROPBEAR_ESCAPE_CHAR) {
    if (cli_ses.last_char === 0x0d) {
      cli_ses.last_char = DROPBEAR_ESCAPE_CHAR;
      skip_char = true;
    } else {
      cli_ses.last_char = 0;
    }
  } else {
    cli_ses.last_char = c;
  }
  return skip_char ? 0 : len;
}
