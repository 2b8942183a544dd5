import { accessSync, closeSync, existsSync, openSync, readSync, statSync, writeSync, constants as fsConstants } from "node:fs";
import { Socket, type OnReadOpts } from "node:net";
import { svr_agentcleanup, svr_agentreq, svr_agentset } from "@dropbear-ts/agentfwd";
import {
  get_user_shell_path,
  getpwnam,
  svr_pubkey_allows_pty,
  svr_pubkey_has_forced_command,
  svr_pubkey_set_forced_command,
  svr_raise_gid_utmp,
  svr_restore_gid,
} from "@dropbear-ts/auth";
import { buf_getbool, buf_getbyte, buf_getint, buf_getptr, buf_getstring, buf_incrpos, buf_putbyte, buf_putint, buf_putstring, type buffer } from "@dropbear-ts/buffer";
import { send_msg_channel_failure, send_msg_channel_success, update_channel_prio } from "@dropbear-ts/channel";
import { ChanSess, exitinfo, homePath, type ChanType, type Channel, type SvrSession } from "@dropbear-ts/core";
import {
  LOG_INFO,
  LOG_WARNING,
  SpawnChild,
  TRACE,
  WCOREDUMP,
  WEXITSTATUS,
  WIFEXITED,
  WIFSIGNALED,
  WTERMSIG,
  atomicio,
  dropbear_assert,
  dropbear_exit,
  dropbear_log,
  envBytes,
  expand_homedir_path,
  libcFunc,
  run_shell_command,
  spawnSetenv,
  spawn_command,
  strerror_code,
  strerror_errno,
  waitpidNohang,
  textBytes,
} from "@dropbear-ts/dbutil";
import { StreamFd, dropbear_prio, socketStreamOptions, get_socket_address, withReadRing, type SocketReadRing } from "@dropbear-ts/netio";
import {
  DEFAULT_PATH,
  DEFAULT_ROOT_PATH,
  DO_MOTD,
  DROPBEAR_SFTPSERVER,
  DROPBEAR_SVR_AGENTFWD,
  DROPBEAR_SVR_DROP_PRIVS,
  DROPBEAR_SVR_MULTIUSER,
  LOG_COMMANDS,
  MAX_NAME_LEN,
  MAX_TERM_LEN,
  MOTD_FILENAME,
  MOTD_MAXSIZE,
  SFTPSERVER_PATH,
  SSH_MSG_CHANNEL_REQUEST,
  DROPBEAR_FAILURE,
  DROPBEAR_SUCCESS,
} from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { signames } from "./common-chansession.js";
import { LTYPE_LOGIN, LTYPE_LOGOUT, login_alloc_entry, login_free_entry, login_login, login_logout, login_utmp_only, type logininfo } from "./loginrec.js";
import { pty_allocate, pty_change_window_size, pty_make_controlling_tty, pty_release, pty_setowner } from "./sshpty.js";
import { TCSANOW, _POSIX_VDISABLE, tcgetattr, tcsendbreak, tcsetattr } from "./termios.js";
import {
  MAX_TERMCODE,
  TERMCODE_CONTROL,
  TERMCODE_CONTROLCHAR,
  TERMCODE_INPUT,
  TERMCODE_LOCAL,
  TERMCODE_NONE,
  TERMCODE_OUTPUT,
  termcodes,
} from "./termcodes.js";

// svr-chansession.c: the server's "session" channels — a command, a shell or a subsystem,
// with or without a pty — and their children's exits. Dropbear forks and sets the child up in
// C code; here the child is described (fds, session, directory, environment) and started with
// posix_spawn (dbutil's spawn_command / run_command), so the connection process never forks.

/** Where Debian's OpenSSH keeps sftp-server, used when SFTPSERVER_PATH is not there. */
export const DEBIAN_SFTPSERVER_PATH = "/usr/lib/openssh/sftp-server";

/** _PATH_MAILDIR on Debian: MAIL is $_PATH_MAILDIR/$USER, as OpenSSH's sshd sets it. */
const MAILDIR = "/var/mail";

/**
 * Environment requests we accept (beyond Dropbear, which ignores "env"): the locale only,
 * bounded, before the command starts. See docs/deviations.md.
 */
const ENV_NAME_RE = /^(LANG|LC_[A-Z_]{1,32})$/;
const MAX_ENV_VALUE_LEN = 256;
const MAX_ENV_VARS = 32;
/**
 * Longest "exec" command (or subsystem name) a session takes (beyond Dropbear, which reads it as
 * any string, at most MAX_STRING_LEN = MAX_CMD_LEN = 9000, and ends the connection past that):
 * the longest one argument Linux passes to `sh -c` (MAX_ARG_STRLEN, 128 KiB, less its NUL).
 * See docs/deviations.md.
 */
export const MAX_EXEC_CMD_LEN = 128 * 1024 - 1;

/** A channel's ChanSess (set by newchansess). */
function chansessOf(channel: Channel): ChanSess | null {
  return channel.typedata as ChanSess | null;
}

/** The C string of an SSH string: bytes up to the first NUL, as strcmp sees them. */
function cstr(b: Buffer): string {
  const nul = b.indexOf(0);
  return (nul >= 0 ? b.subarray(0, nul) : b).toString("latin1");
}

// ---------------------------------------------------------------------------------------------
// A child's descriptors as event-loop Fds.

/**
 * Would select() call fd readable now: data, EOF or a hang-up (C's fd_read_pending). poll()
 * rather than FIONREAD: for a pty master the kernel first pushes what the slave wrote through
 * its flip buffer (n_tty_poll), so output the child wrote just before exiting is counted.
 */
export function kernelReadable(fd: number): boolean {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(0x1 /* POLLIN */, 4);
  const poll = libcFunc<(fds: Buffer, nfds: number, timeout: number) => number>("int poll(_Inout_ uint8_t *fds, unsigned long nfds, int timeout)");
  if (poll(pfd, 1, 0) < 0) {
    // C's fd_read_pending counts an error as pending: the read then reports it.
    return true;
  }
  // POLLIN | POLLERR | POLLHUP: what select() puts in the read set.
  return (pfd.readInt16LE(6) & (0x1 | 0x8 | 0x10)) !== 0;
}

/** libuv's pipe handle, which can own any pollable fd (pipes, and a pty master Node's net refuses). */
interface PipeWrap {
  Pipe: new (type: number) => { open(fd: number): number };
  constants: { SOCKET: number };
}

let pipeWrap: PipeWrap | null = null;

/**
 * A child's pipe end or pty master as an Fd of the session loop. Node's net.Socket takes a pipe
 * fd but refuses a tty, so the fd is handed to a libuv pipe handle directly (which is what
 * net.Socket does for a pipe); libuv makes it non-blocking (C's setnonblocking).
 *
 * Once the child has exited, readiness also counts what the kernel still holds and Node has not
 * read yet, as select() in C sees it: check_close then closes a channel's read fds as soon as
 * nothing is pending on them (flushing), and Node's own buffer alone can be empty for a moment
 * while the kernel still holds the child's last output (or its EOF). Before that, Node's own
 * events say all a select() needs (the ring reads whenever it holds less than its bound), so
 * the poll(), an FFI call, is not paid on every readiness check of every turn.
 */
export class ChildFd extends StreamFd {
  private shut = false;

  constructor(
    stream: Socket,
    /** The descriptor number, for poll(), termios and window-size calls. */
    readonly rawfd: number,
    /** How the child we read from ended (exitpid -1 while it runs); null for an fd we write. */
    private readonly readsFrom: exitinfo | null,
    ring: SocketReadRing | null,
  ) {
    super(stream, ring);
  }

  override readReady(): boolean {
    if (super.readReady()) {
      return true;
    }
    if (this.readsFrom === null || this.readsFrom.exitpid === -1 || this.closed || this.shut) {
      return false;
    }
    return kernelReadable(this.rawfd);
  }

  override shutdownRead(): void {
    this.shut = true;
    super.shutdownRead();
  }
}

/** Wrap a raw descriptor we own (it is closed with the Fd); `readsFrom` is the child it reads from, if it reads. */
export function childFd(rawfd: number, readsFrom: exitinfo | null): ChildFd {
  const readable = readsFrom !== null;
  const writable = !readable;
  pipeWrap ??= (process as unknown as { binding(name: string): PipeWrap }).binding("pipe_wrap");
  const handle = new pipeWrap.Pipe(pipeWrap.constants.SOCKET);
  const err = handle.open(rawfd);
  if (err !== 0) {
    closeSync(rawfd);
    dropbear_exit(`Couldn't watch fd ${rawfd}: ${err}`);
  }
  const make = (onread?: OnReadOpts): Socket =>
    new Socket({ handle, readable, writable, allowHalfOpen: true, onread, ...socketStreamOptions } as unknown as ConstructorParameters<typeof Socket>[0]);
  if (!readable) {
    return new ChildFd(make(), rawfd, null, null);
  }
  // Read into a ring of our own, as a forwarded socket is, so that while the channel may not
  // send the child's output waits in the pipe (StreamFd.setReadAhead), not in our memory.
  const { sock, ring } = withReadRing(make);
  return new ChildFd(sock, rawfd, readsFrom, ring);
}

// ---------------------------------------------------------------------------------------------
// The channel type.

/** Returns whether the channel may close: its child never started or has exited. @dropbear svr-chansession.c sesscheckclose */
function sesscheckclose(_ses: SvrSession, channel: Channel): boolean {
  const chansess = chansessOf(channel)!;
  TRACE(() => `sesscheckclose, pid ${chansess.pid}, exitpid ${chansess.exit.exitpid}`);
  if (chansess.exit.exitpid !== -1) {
    channel.flushing = true;
  }
  return chansess.pid === 0 || chansess.exit.exitpid !== -1;
}

/** Sessions whose signal pipe SIGCHLD raises (one process-wide handler for all of them). */
const sigchldSessions = new Set<WeakRef<SvrSession>>();
let sigchldInstalled = false;

/** Record how a reaped child ended. */
function setExit(ex: exitinfo, pid: number, status: number): void {
  ex.exitpid = pid;
  if (WIFEXITED(status)) {
    ex.exitstatus = WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    ex.exitsignal = WTERMSIG(status);
    ex.exitcore = WCOREDUMP(status);
  } else {
    // We use this to determine how the pid exited.
    ex.exitsignal = -1;
  }
}

/**
 * After SIGCHLD: reap the children that have exited and store how each ended for its channel.
 * C calls waitpid(-1, WNOHANG) until none is left; here each child we started is asked for by
 * its pid, so a child the Node runtime itself started (child_process) is never taken from it.
 * C's race (a child reaped before its pid is recorded, kept in svr_ses.lastexit) cannot happen:
 * posix_spawn returns the pid before any signal handler of ours can run. Children whose channel
 * is already gone are reaped into lastexit, as C's waitpid(-1) does.
 * @dropbear svr-chansession.c svr_chansess_checksignal
 */
export function svr_chansess_checksignal(ses: SvrSession): void {
  if (!ses.channel_signal_pending) {
    return;
  }
  const svr_ses = ses.svr_ses;
  for (const cp of svr_ses.childpids) {
    if (cp.pid <= 0 || cp.chansess === null || cp.chansess.exit.exitpid !== -1) {
      continue;
    }
    const r = waitpidNohang(cp.pid);
    if (r !== null) {
      TRACE(() => `svr_chansess_checksignal : pid ${r[0]}`);
      TRACE("found match session");
      setExit(cp.chansess.exit, r[0], r[1]);
    }
  }
  for (const pid of svr_ses.releasedpids) {
    const r = waitpidNohang(pid);
    if (r !== null) {
      TRACE("using lastexit");
      svr_ses.releasedpids.delete(pid);
      setExit(svr_ses.lastexit, r[0], r[1]);
    }
  }
}

/** Send the exit status, or the signal that ended the child. @dropbear svr-chansession.c send_exitsignalstatus */
function send_exitsignalstatus(ses: SvrSession, channel: Channel): void {
  const chansess = chansessOf(channel)!;
  if (chansess.exit.exitpid >= 0) {
    if (chansess.exit.exitsignal > 0) {
      send_msg_chansess_exitsignal(ses, channel, chansess);
    } else {
      send_msg_chansess_exitstatus(ses, channel, chansess);
    }
  }
}

/** "exit-status" with the child's status. @dropbear svr-chansession.c send_msg_chansess_exitstatus */
function send_msg_chansess_exitstatus(ses: SvrSession, channel: Channel, chansess: ChanSess): void {
  dropbear_assert(chansess.exit.exitpid !== -1, "chansess->exit.exitpid != -1");
  dropbear_assert(chansess.exit.exitsignal === -1, "chansess->exit.exitsignal == -1");
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_REQUEST);
  buf_putint(ses.writepayload, channel.remotechan);
  buf_putstring(ses.writepayload, "exit-status");
  buf_putbyte(ses.writepayload, 0); // boolean FALSE
  buf_putint(ses.writepayload, chansess.exit.exitstatus);
  encrypt_packet(ses);
}

/**
 * "exit-signal" with the signal's name and the core-dumped flag; nothing is sent for a signal
 * without an SSH name. @dropbear svr-chansession.c send_msg_chansess_exitsignal
 */
function send_msg_chansess_exitsignal(ses: SvrSession, channel: Channel, chansess: ChanSess): void {
  dropbear_assert(chansess.exit.exitpid !== -1, "chansess->exit.exitpid != -1");
  dropbear_assert(chansess.exit.exitsignal > 0, "chansess->exit.exitsignal > 0");
  TRACE(() => `send_msg_chansess_exitsignal ${chansess.exit.exitsignal}`);
  // We check that we can match a signal name, otherwise don't send anything.
  const signame = signames.find((s) => s.signal === chansess.exit.exitsignal)?.name;
  if (signame === undefined) {
    return;
  }
  buf_putbyte(ses.writepayload, SSH_MSG_CHANNEL_REQUEST);
  buf_putint(ses.writepayload, channel.remotechan);
  buf_putstring(ses.writepayload, "exit-signal");
  buf_putbyte(ses.writepayload, 0); // boolean FALSE
  buf_putstring(ses.writepayload, signame);
  buf_putbyte(ses.writepayload, chansess.exit.exitcore ? 1 : 0);
  buf_putstring(ses.writepayload, ""); // error msg
  buf_putstring(ses.writepayload, ""); // lang
  encrypt_packet(ses);
}

/**
 * chansess.pid of a command an embedding program runs (serversession.embed): not 0, so the
 * channel counts as running one, and never a process: nothing signals or waits for it.
 */
export const EMBEDDED_PID = -1;

/**
 * An embedding program's command ended: with an exit status, or killed by the signal numbered
 * `signal`. The channel then closes as after a child's exit once its output is drained: with
 * exit-status, or exit-signal when SSH has a name for the signal (none at all otherwise, as
 * for a child). Later calls change nothing.
 */
export function chansessEmbeddedExit(ses: SvrSession, chansess: ChanSess, status: number, signal: number | null = null): void {
  if (chansess.exit.exitpid !== -1) {
    return;
  }
  chansess.exit.exitstatus = status;
  chansess.exit.exitsignal = signal ?? -1;
  chansess.exit.exitcore = false;
  // Any value but -1 says "has exited"; 0 is no real pid.
  chansess.exit.exitpid = 0;
  ses.signal_pipe?.raise();
}

/** Set up a session channel: no command, no pty yet. @dropbear svr-chansession.c newchansess */
function newchansess(_ses: SvrSession, channel: Channel): number {
  TRACE("new chansess");
  dropbear_assert(channel.typedata === null, "channel->typedata == NULL");
  const chansess = new ChanSess();
  chansess.exit.exitpid = -1;
  channel.typedata = chansess;
  // Will drop to DROPBEAR_PRIO_NORMAL if a non-tty command starts.
  channel.prio = dropbear_prio.DROPBEAR_PRIO_LOWDELAY;
  return 0;
}

/** The login record of this channel's pty. @dropbear svr-chansession.c chansess_login_alloc */
function chansess_login_alloc(ses: SvrSession, chansess: ChanSess): logininfo {
  return login_alloc_entry(chansess.pid, ses.authstate.username, ses.svr_ses.remotehost, chansess.tty);
}

/** Send the exit status just before the channel's CLOSE. @dropbear svr-chansession.c closechansess */
function closechansess(ses: SvrSession, channel: Channel): void {
  TRACE("enter closechansess");
  const chansess = chansessOf(channel);
  if (chansess === null) {
    TRACE("leave closechansess: chansess == NULL");
    return;
  }
  send_exitsignalstatus(ses, channel);
  TRACE("leave closechansess");
}

/**
 * Clean a session channel up: the logout record and the pty, agent forwarding, and the child
 * table entries. @dropbear svr-chansession.c cleanupchansess
 */
function cleanupchansess(ses: SvrSession, channel: Channel): void {
  TRACE("enter closechansess");
  const chansess = chansessOf(channel);
  if (chansess === null) {
    TRACE("leave closechansess: chansess == NULL");
    return;
  }
  if (chansess.pid === EMBEDDED_PID) {
    ses.svr_ses.embed?.sessionclosed(ses, chansess);
  }
  chansess.cmd = null;
  chansess.term = null;
  chansess.original_command = null;

  // A pty that never ran a command is not the channel's fd: close it here (C leaves it open
  // until the process exits).
  if (chansess.masterfd === null && chansess.master >= 0) {
    closeQuietly(chansess.master);
  }
  chansess.master = -1;

  if (chansess.tty !== null) {
    if (chansess.pid > 0) {
      // Write the utmp/wtmp logout record (a login was recorded only if a command started).
      const li = chansess_login_alloc(ses, chansess);
      svr_raise_gid_utmp(ses);
      login_logout(li);
      svr_restore_gid(ses);
      login_free_entry(li);
    }
    pty_release(chansess.tty);
    chansess.tty = null;
  }
  // The slave goes last: while it is open the kernel keeps the pty's number, so a new login
  // cannot take it before the logout above is written over the same utmp entry (ut_id).
  if (chansess.slave >= 0) {
    closeQuietly(chansess.slave);
    chansess.slave = -1;
  }

  if (DROPBEAR_SVR_AGENTFWD) {
    svr_agentcleanup(ses, chansess);
  }

  // Clear child pid entries.
  const svr_ses = ses.svr_ses;
  for (const cp of svr_ses.childpids) {
    if (cp.chansess === chansess) {
      dropbear_assert(cp.pid > 0, "svr_ses.childpids[i].pid > 0");
      TRACE(() => `closing pid ${cp.pid}`);
      TRACE(() => `exitpid is ${chansess.exit.exitpid}`);
      if (chansess.exit.exitpid === -1) {
        svr_ses.releasedpids.add(cp.pid);
      }
      cp.pid = -1;
      cp.chansess = null;
    }
  }
  chansess.clientenv = null;
  channel.typedata = null;
  TRACE("leave closechansess");
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed.
  }
}

/**
 * A request on a session channel: start a command, shell or subsystem, set up a pty, resize
 * it, signal the child, forward the agent, send a break. Anything else is refused; a reply
 * goes out when the client wants one. @dropbear svr-chansession.c chansessionrequest
 */
function chansessionrequest(ses: SvrSession, channel: Channel): void {
  TRACE("enter chansessionrequest");
  const payload = ses.payload!;
  const typebuf = buf_getstring(payload);
  const wantreply = buf_getbool(payload);
  let ret = 1; // neither success nor failure: a failure reply

  if (typebuf.length > MAX_NAME_LEN) {
    TRACE("leave chansessionrequest: type too long");
  } else {
    const chansess = chansessOf(channel);
    dropbear_assert(chansess !== null, "chansess != NULL");
    const type = cstr(typebuf);
    TRACE(() => `type is ${type}`);
    if (type === "window-change") {
      ret = sessionwinchange(ses, chansess);
    } else if (type === "shell") {
      ret = sessioncommand(ses, channel, chansess, false, false);
    } else if (type === "pty-req") {
      ret = sessionpty(ses, chansess);
    } else if (type === "exec") {
      ret = sessioncommand(ses, channel, chansess, true, false);
    } else if (type === "subsystem") {
      ret = sessioncommand(ses, channel, chansess, true, true);
    } else if (DROPBEAR_SVR_AGENTFWD && type === "auth-agent-req@openssh.com" && ses.svr_ses.embed === null) {
      // (An embedding program's sessions get no agent socket: refused, beyond Dropbear.)
      ret = svr_agentreq(ses, chansess);
    } else if (type === "signal") {
      ret = sessionsignal(ses, chansess);
    } else if (type === "env") {
      ret = sessionenv(ses, chansess);
    } else if (type === "break") {
      ret = sessionbreak(ses, chansess);
    } else {
      // x11-req (X11 forwarding is not built, as in Dropbear's default build) and the rest.
    }
  }

  if (wantreply) {
    if (ret === DROPBEAR_SUCCESS) {
      send_msg_channel_success(ses, channel);
    } else {
      send_msg_channel_failure(ses, channel);
    }
  }
  TRACE("leave chansessionrequest");
}

/**
 * Send a signal the client names to the child. Refused before the child runs, for a forced
 * command, for a name we do not know, and (beyond C) once the child has been reaped, when its
 * pid may belong to another process already. @dropbear svr-chansession.c sessionsignal
 */
function sessionsignal(ses: SvrSession, chansess: ChanSess): number {
  TRACE("sessionsignal");
  if (chansess.pid === 0) {
    TRACE("sessionsignal: done no pid");
    return DROPBEAR_FAILURE;
  }
  const embed = ses.svr_ses.embed;
  if (embed !== null) {
    // The embedding program's command: it gets the signal's name.
    const name = cstr(buf_getstring(ses.payload!));
    const known = signames.some((s) => s.name === name);
    return known && chansess.exit.exitpid === -1 && embed.sessionsignal(ses, chansess, name) ? DROPBEAR_SUCCESS : DROPBEAR_FAILURE;
  }
  if (ses.svr_ses.svr_opts.forced_command !== null || svr_pubkey_has_forced_command(ses)) {
    TRACE("disallowed signal for forced_command");
    return DROPBEAR_FAILURE;
  }
  if (DROPBEAR_SVR_MULTIUSER && !DROPBEAR_SVR_DROP_PRIVS) {
    TRACE("disallow signal without drop privs");
    return DROPBEAR_FAILURE;
  }
  const signame = cstr(buf_getstring(ses.payload!));
  const sig = signames.find((s) => s.name === signame)?.signal ?? 0;
  TRACE(() => `sessionsignal: pid ${chansess.pid} signal ${sig}`);
  if (sig === 0) {
    return DROPBEAR_FAILURE;
  }
  if (chansess.exit.exitpid !== -1) {
    TRACE("sessionsignal: child already reaped");
    return DROPBEAR_FAILURE;
  }
  try {
    process.kill(chansess.pid, sig);
  } catch {
    TRACE("sessionsignal: kill() errored");
    return DROPBEAR_FAILURE;
  }
  return DROPBEAR_SUCCESS;
}

/**
 * The client's terminal changed size: tell the pty. Refused without a pty.
 * @dropbear svr-chansession.c sessionwinchange
 */
function sessionwinchange(ses: SvrSession, chansess: ChanSess): number {
  if (chansess.master < 0 && chansess.embedpty === null) {
    // Haven't got a pty yet.
    return DROPBEAR_FAILURE;
  }
  const payload = ses.payload!;
  const termc = buf_getint(payload);
  const termr = buf_getint(payload);
  const termw = buf_getint(payload);
  const termh = buf_getint(payload);
  if (chansess.embedpty !== null) {
    chansess.embedpty = { cols: termc & 0xffff, rows: termr & 0xffff };
  } else if (ptyMasterOpen(chansess)) {
    pty_change_window_size(chansess.master, termr, termc, termw, termh);
  }
  if (chansess.pid === EMBEDDED_PID) {
    ses.svr_ses.embed?.sessionwinchange(ses, chansess, termc, termr);
  }
  return DROPBEAR_SUCCESS;
}

/**
 * The pty's master number still names it: it stays open as long as the channel's fd does (C
 * would ioctl a stale number).
 */
function ptyMasterOpen(chansess: ChanSess): boolean {
  return chansess.masterfd === null || !chansess.masterfd.closed;
}

/**
 * RFC 4335's "break" (beyond Dropbear 2026.94, which refuses it; as OpenSSH's sshd does): a
 * break on the pty, whose length the pty driver sets, so the client's is read and not used.
 * Refused without a pty, and refused (not the session ended, as sshd would) when the length is
 * cut short: Dropbear refuses every break unread, so none may end the connection.
 */
function sessionbreak(ses: SvrSession, chansess: ChanSess): number {
  const payload = ses.payload!;
  if (payload.len - payload.pos < 4) {
    TRACE("refused break: no break-length");
    return DROPBEAR_FAILURE;
  }
  buf_getint(payload); // break-length in milliseconds
  if (chansess.master < 0 || !ptyMasterOpen(chansess)) {
    return DROPBEAR_FAILURE;
  }
  return tcsendbreak(chansess.master, 0) === 0 ? DROPBEAR_SUCCESS : DROPBEAR_FAILURE;
}

/**
 * Apply the pty-req's encoded terminal modes (RFC 4254 §8) to the pty. A length that does not
 * match the rest of the packet ends the session, as in C; unknown opcodes are skipped, and a
 * mode the pty refuses is only logged. A control character of 255 disables it, as in OpenSSH's
 * sshd (docs/deviations.md). @dropbear svr-chansession.c get_termmodes
 */
function get_termmodes(ses: SvrSession, chansess: ChanSess): void {
  TRACE("enter get_termmodes");
  // Errors are ignored: we go on if the modes cannot be set. Baud rates are ignored too.
  const termio = tcgetattr(chansess.master);
  if (termio === null) {
    return;
  }
  const payload = ses.payload!;
  const len = buf_getint(payload);
  TRACE(() => `term mode str ${len} p->l ${payload.len} p->p ${payload.pos}`);
  if (len !== payload.len - payload.pos) {
    dropbear_exit("Bad term mode string");
  }
  if (len === 0) {
    TRACE("leave get_termmodes: empty terminal modes string");
    return;
  }
  let opcode: number;
  while ((opcode = buf_getbyte(payload)) !== 0x00 && opcode <= 159) {
    // Read before the type is checked, so that the value is consumed even if unused.
    const value = buf_getint(payload);
    if (opcode > MAX_TERMCODE) {
      continue;
    }
    const termcode = termcodes[opcode]!;
    switch (termcode.type) {
      case TERMCODE_NONE:
        break;
      case TERMCODE_CONTROLCHAR:
        // 255 is how OpenSSH's ssh sends a disabled character (ttymodes.c special_char_encode):
        // C stores it as the byte 0xff, so an ÿ typed in a Latin-1 terminal ended the line.
        termio.setcc(termcode.mapcode, value === 255 ? _POSIX_VDISABLE : value);
        break;
      case TERMCODE_INPUT:
        termio.c_iflag = value ? termio.c_iflag | termcode.mapcode : termio.c_iflag & ~termcode.mapcode;
        break;
      case TERMCODE_OUTPUT:
        termio.c_oflag = value ? termio.c_oflag | termcode.mapcode : termio.c_oflag & ~termcode.mapcode;
        break;
      case TERMCODE_LOCAL:
        termio.c_lflag = value ? termio.c_lflag | termcode.mapcode : termio.c_lflag & ~termcode.mapcode;
        break;
      case TERMCODE_CONTROL:
        termio.c_cflag = value ? termio.c_cflag | termcode.mapcode : termio.c_cflag & ~termcode.mapcode;
        break;
    }
  }
  if (tcsetattr(chansess.master, TCSANOW, termio) < 0) {
    dropbear_log(LOG_INFO, "Error setting terminal attributes");
  }
  TRACE("leave get_termmodes");
}

/**
 * pty-req: allocate the pty now (it waits for the shell or command), give it to the user, set
 * its size and modes. A second pty-req ends the session, as in C.
 * @dropbear svr-chansession.c sessionpty
 */
function sessionpty(ses: SvrSession, chansess: ChanSess): number {
  TRACE("enter sessionpty");
  if (!svr_pubkey_allows_pty(ses)) {
    TRACE("leave sessionpty : pty forbidden by public key option");
    return DROPBEAR_FAILURE;
  }
  chansess.term = buf_getstring(ses.payload!);
  if (chansess.term.length > MAX_TERM_LEN) {
    TRACE("leave sessionpty: term len too long");
    return DROPBEAR_FAILURE;
  }
  // Allocate the pty.
  if (chansess.master !== -1 || chansess.embedpty !== null) {
    dropbear_exit("Multiple pty requests");
  }
  if (ses.svr_ses.embed !== null) {
    // An embedding program's handlers get pipes, never the pty: none is made, only the size is
    // kept (a real one per request let one client hold up to MAX_CHANNELS of the host's ptys).
    // The modes would have nothing to apply to.
    chansess.embedpty = { cols: 0, rows: 0 };
    sessionwinchange(ses, chansess);
    TRACE("leave sessionpty: embedded");
    return DROPBEAR_SUCCESS;
  }
  const pty = pty_allocate();
  if (pty === null) {
    TRACE("leave sessionpty: failed to allocate pty");
    return DROPBEAR_FAILURE;
  }
  chansess.master = pty.ptyfd;
  chansess.slave = pty.ttyfd;
  chansess.tty = pty.name;

  const pw = getpwnam(ses.authstate.pw_name!);
  if (pw === null) {
    dropbear_exit("getpwnam failed after succeeding previously");
  }
  pty_setowner(pw, chansess.tty);
  // Set up the rows/col counts.
  sessionwinchange(ses, chansess);
  // Read the terminal modes.
  get_termmodes(ses, chansess);
  TRACE("leave sessionpty");
  return DROPBEAR_SUCCESS;
}

/**
 * "env" (beyond Dropbear 2026.94, which refuses every one): LANG and LC_* only, with bounded
 * names and values and no NUL, before the command starts; they go into the child's
 * environment after the server's own LANG. Anything else is refused. See docs/deviations.md.
 */
function sessionenv(ses: SvrSession, chansess: ChanSess): number {
  const payload = ses.payload!;
  const namebuf = envString(payload, MAX_NAME_LEN);
  const valuebuf = namebuf && envString(payload, MAX_ENV_VALUE_LEN);
  if (!namebuf || !valuebuf || chansess.pid !== 0) {
    TRACE("refused env: too long, malformed or after the command");
    return DROPBEAR_FAILURE;
  }
  const name = namebuf.toString("latin1");
  if (!ENV_NAME_RE.test(name) || valuebuf.includes(0)) {
    TRACE(() => `refused env ${name}`);
    return DROPBEAR_FAILURE;
  }
  const vars = (chansess.clientenv ??= new Map());
  if (!vars.has(name) && vars.size >= MAX_ENV_VARS) {
    return DROPBEAR_FAILURE;
  }
  vars.set(name, valuebuf);
  return DROPBEAR_SUCCESS;
}

/**
 * The next string of an "env" request if it is there whole and at most `max` bytes, else null:
 * Dropbear refuses "env" without reading it, so no "env" may end the connection, however long
 * or cut short (ssh -o SetEnv=... sends what its user wrote).
 */
function envString(payload: buffer, max: number): Buffer | null {
  if (payload.len - payload.pos < 4) {
    return null;
  }
  const len = buf_getint(payload);
  if (len > max || len > payload.len - payload.pos) {
    return null;
  }
  const ret = Buffer.from(buf_getptr(payload, len));
  buf_incrpos(payload, len);
  return ret;
}

/**
 * $SSH_CONNECTION ("remoteip remoteport localip localport") and $SSH_CLIENT ("remoteip
 * remoteport localport": deprecated, but bash only reads .bashrc when it is set), numeric.
 * @dropbear svr-chansession.c make_connection_string
 */
function make_connection_string(ses: SvrSession, chansess: ChanSess): void {
  const { local_host: local_ip, local_port, remote_host: remote_ip, remote_port } = get_socket_address(ses.sock_in!);
  chansess.connection_string = `${remote_ip} ${remote_port} ${local_ip} ${local_port}`;
  chansess.client_string = `${remote_ip} ${remote_port} ${local_port}`;
}

/** The sftp-server to run for the "sftp" subsystem: SFTPSERVER_PATH, or Debian's where that is missing. */
function sftpserver_path(): string {
  const configured = expand_homedir_path(SFTPSERVER_PATH);
  if (existsSync(configured) || !existsSync(DEBIAN_SFTPSERVER_PATH)) {
    return configured;
  }
  return DEBIAN_SFTPSERVER_PATH;
}

/**
 * shell, exec or subsystem: decide the command (subsystem "sftp" is the sftp-server; -c and
 * authorized_keys command= replace what the client asked for, which is kept for
 * SSH_ORIGINAL_COMMAND), then start it with or without the pty. Only one command can succeed
 * on a channel: the client may try one that fails and then another (sftp, then scp).
 * @dropbear svr-chansession.c sessioncommand
 */
function sessioncommand(ses: SvrSession, channel: Channel, chansess: ChanSess, iscmd: boolean, issubsys: boolean): number {
  TRACE(() => `enter sessioncommand ${channel.index}`);
  if (chansess.pid !== 0) {
    TRACE("leave sessioncommand, already have a command");
    return DROPBEAR_FAILURE;
  }
  // Not in C: after the client's EOF on a fresh session our CLOSE may already be out, and
  // nothing may be sent on the channel any more; C starts the command, then its first output
  // fails an assertion (`!channel->sent_close`) and ends the connection.
  if (channel.sent_close) {
    TRACE("leave sessioncommand, channel already closed");
    return DROPBEAR_FAILURE;
  }
  const svr_opts = ses.svr_ses.svr_opts;
  let cmdlen = 0;
  if (iscmd) {
    // "exec"
    if (chansess.cmd === null) {
      // Not C's buf_getstring (MAX_STRING_LEN, 9000 bytes): there a longer command (plink -m
      // with a script, ssh host "$(cat script)") ended the connection. OpenSSH runs any that
      // fits a packet; one past MAX_EXEC_CMD_LEN is refused, the connection kept. A string cut
      // short still ends it, as C's buffer reads do.
      const payload = ses.payload!;
      const len = buf_getint(payload);
      if (len > MAX_EXEC_CMD_LEN) {
        TRACE(() => `leave sessioncommand, command too long ${len}`);
        return DROPBEAR_FAILURE;
      }
      chansess.cmd = Buffer.from(buf_getptr(payload, len));
      buf_incrpos(payload, len);
      cmdlen = chansess.cmd.length;
    }
  }

  const embed = ses.svr_ses.embed;
  if (embed !== null) {
    // The embedding program runs it (beyond Dropbear): no forced commands, no sftp-server path.
    const kind = !iscmd ? "shell" : issubsys ? "subsystem" : "exec";
    if (!embed.sessioncommand(ses, channel, chansess, kind, chansess.cmd)) {
      chansess.cmd = null;
      TRACE("leave sessioncommand, refused by the embedding program");
      return DROPBEAR_FAILURE;
    }
    chansess.pid = EMBEDDED_PID;
    if (chansess.term === null) {
      channel.prio = dropbear_prio.DROPBEAR_PRIO_NORMAL;
      update_channel_prio(ses);
    }
    return DROPBEAR_SUCCESS;
  }

  if (iscmd) {
    if (issubsys) {
      if (DROPBEAR_SFTPSERVER && cmdlen === 4 && chansess.cmd!.subarray(0, 4).toString("latin1") === "sftp") {
        chansess.cmd = Buffer.from(sftpserver_path(), "utf8");
      } else {
        chansess.cmd = null;
        TRACE("leave sessioncommand, unknown subsystem");
        return DROPBEAR_FAILURE;
      }
    }
  }

  // Take the global command into account.
  if (svr_opts.forced_command !== null) {
    chansess.original_command = chansess.cmd ?? Buffer.alloc(0);
    // -c's bytes as given (argText): a command that is not UTF-8 keeps them.
    chansess.cmd = textBytes(svr_opts.forced_command);
  } else {
    // Take the public key option 'command' into account. It works on strings: latin1 keeps the
    // client's bytes as they are for SSH_ORIGINAL_COMMAND.
    const target = { cmd: chansess.cmd === null ? null : chansess.cmd.toString("latin1"), original_command: null as string | null };
    svr_pubkey_set_forced_command(ses, target);
    if (target.original_command !== null) {
      chansess.original_command = chansess.cmd ?? Buffer.alloc(0);
      chansess.cmd = Buffer.from(target.cmd ?? "", "latin1");
    }
  }

  if (LOG_COMMANDS) {
    if (chansess.cmd !== null) {
      dropbear_log(LOG_INFO, `User ${ses.authstate.pw_name} executing '${cstr(chansess.cmd)}'`);
    } else {
      dropbear_log(LOG_INFO, `User ${ses.authstate.pw_name} executing login shell`);
    }
  }

  make_connection_string(ses, chansess);

  let ret: number;
  if (chansess.term === null) {
    // No pty.
    ret = noptycommand(ses, channel, chansess);
    if (ret === DROPBEAR_SUCCESS) {
      channel.prio = dropbear_prio.DROPBEAR_PRIO_NORMAL;
      update_channel_prio(ses);
    }
  } else {
    // Want a pty.
    ret = ptycommand(ses, channel, chansess);
  }

  chansess.connection_string = null;
  chansess.client_string = null;
  if (ret === DROPBEAR_FAILURE) {
    chansess.cmd = null;
  }
  TRACE(() => `leave sessioncommand, ret ${ret}`);
  return ret;
}

/** What execchild needs: C passes the chansess and reaches the rest through globals. */
interface ExecData {
  ses: SvrSession;
  chansess: ChanSess;
}

/**
 * Run the command without a pty: pipes for stdin, stdout and stderr (stderr goes to the client
 * as extended data). @dropbear svr-chansession.c noptycommand
 */
function noptycommand(ses: SvrSession, channel: Channel, chansess: ChanSess): number {
  TRACE("enter noptycommand");
  const r = spawn_command(execchild, { ses, chansess }, true);
  if (r === null) {
    return DROPBEAR_FAILURE;
  }
  channel.writefd = childFd(r.writefd, null);
  channel.readfd = childFd(r.readfd, chansess.exit);
  channel.errfd = childFd(r.errfd, chansess.exit);
  channel.bidir_fd = false;
  chansess.pid = r.pid;

  addchildpid(ses, chansess, chansess.pid);

  const svr_ses = ses.svr_ses;
  if (svr_ses.lastexit.exitpid !== -1) {
    TRACE(() => `parent side: lastexitpid is ${svr_ses.lastexit.exitpid}`);
    // The child exited before its pid was recorded: fill out its exit manually.
    for (const cp of svr_ses.childpids) {
      if (cp.pid === svr_ses.lastexit.exitpid && cp.chansess !== null) {
        TRACE("found match for lastexitpid");
        Object.assign(cp.chansess.exit, svr_ses.lastexit);
        svr_ses.lastexit = new exitinfo();
        break;
      }
    }
  }
  TRACE("leave noptycommand");
  return DROPBEAR_SUCCESS;
}

/** The message of the day for a login shell, unless -m or ~/.hushlogin. */
function motd(ses: SvrSession): Buffer | null {
  const svr_opts = ses.svr_ses.svr_opts;
  if (!DO_MOTD || !svr_opts.domotd) {
    return null;
  }
  // Don't show the motd if ~/.hushlogin exists.
  const hushpath = Buffer.concat([homePath(ses.authstate), Buffer.from("/.hushlogin")]);
  try {
    statSync(hushpath);
    return null;
  } catch {
    // Not there: show it.
  }
  // More than a screenful is stupid IMHO (C's comment).
  const motdbuf = Buffer.alloc(MOTD_MAXSIZE);
  let len = 0;
  try {
    const fd = openSync(expand_homedir_path(MOTD_FILENAME), "r");
    try {
      let n: number;
      while (len < MOTD_MAXSIZE && (n = readSync(fd, motdbuf, len, MOTD_MAXSIZE - len, null)) > 0) {
        len += n;
      }
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  // In case it is full size, add LF at the last position.
  if (len === MOTD_MAXSIZE) {
    motdbuf[len - 1] = 10;
  }
  return motdbuf.subarray(0, len);
}

/**
 * Run the command or shell on the pty: the child gets it as controlling terminal and as
 * stdin, stdout and stderr; a login shell is shown the MOTD first; the login is recorded in
 * utmp, wtmp and lastlog. C does all of this in the forked child before its exec; here the MOTD
 * is written to the pty's slave before the child starts (it reaches the client through the
 * master just as the child's own write would) and the login records are written by us with the
 * child's pid. @dropbear svr-chansession.c ptycommand
 */
function ptycommand(ses: SvrSession, channel: Channel, chansess: ChanSess): number {
  TRACE("enter ptycommand");
  // We need to have a pty allocated.
  if (chansess.master === -1 || chansess.tty === null) {
    dropbear_log(LOG_WARNING, "No pty was allocated, couldn't execute");
    return DROPBEAR_FAILURE;
  }
  const child = new SpawnChild();
  // Redirect stdin/stdout/stderr: the tty, reopened as the controlling terminal, is fd 0.
  pty_make_controlling_tty(child, chansess.tty);
  child.actions.push({ op: "dup2", fd: 0, newfd: 1 });
  child.actions.push({ op: "dup2", fd: 0, newfd: 2 });
  child.stderrfd = chansess.slave;

  if (chansess.cmd === null) {
    const m = motd(ses);
    if (m !== null) {
      atomicio(writeSync, chansess.slave, m);
    }
  }

  // C's child records the login before its exec, so the command's first look at utmp (`who`,
  // `who am i`, a profile script) finds it. Ours runs as soon as it is spawned, before its pid
  // is known to us: the utmp entry goes first under our own pid, and login_login below puts it
  // again with the child's.
  const early = login_alloc_entry(process.pid, ses.authstate.username, ses.svr_ses.remotehost, chansess.tty);
  svr_raise_gid_utmp(ses);
  login_utmp_only(early, LTYPE_LOGIN);
  svr_restore_gid(ses);

  const pid = execchild({ ses, chansess }, child);
  if (pid <= 0) {
    // No child, no login: the entry goes (cleanupchansess records a logout only for a child).
    svr_raise_gid_utmp(ses);
    login_utmp_only(early, LTYPE_LOGOUT);
    svr_restore_gid(ses);
    return DROPBEAR_FAILURE;
  }
  TRACE("continue ptycommand: parent");
  chansess.pid = pid;
  // Add a child pid.
  addchildpid(ses, chansess, pid);

  // Write the utmp/wtmp login record.
  const li = chansess_login_alloc(ses, chansess);
  svr_raise_gid_utmp(ses);
  login_login(li);
  svr_restore_gid(ses);
  login_free_entry(li);

  // C closes its copy of the slave here. We keep ours until the channel goes (cleanupchansess):
  // with no slave left open the master reports a hang-up, and libuv then takes a short read
  // (a pty master gives at most 4095 bytes per read) as the end of the stream, dropping what the
  // child wrote last. With the slave open the master only ever has data or nothing, and the end
  // comes as C's does when a background job keeps the tty: the child is reaped, and check_close
  // (flushing) closes the master once nothing is pending on it.
  // C makes the master both readfd and writefd, so the client's EOF (check_close closes writefd)
  // closes the whole pty and the command's output is lost (`ssh -tt host cmd </dev/null`, an
  // open upstream regression since 2023's "Don't try to shutdown() a pty"). The channel writes
  // to a dup of the master instead, as OpenSSH's sshd does: EOF closes only that, reading goes
  // on until the child is gone, and the pty still closes with the session. See docs/deviations.md.
  const writedup = libcFunc<(fd: number) => number>("int dup(int oldfd)")(chansess.master);
  if (writedup < 0) {
    dropbear_exit("dup() failed");
  }
  const masterfd = childFd(chansess.master, chansess.exit);
  chansess.masterfd = masterfd;
  channel.writefd = childFd(writedup, null);
  channel.readfd = masterfd;
  channel.writefd_dups_readfd = true;
  // Don't need to set stderr here.
  channel.bidir_fd = false;
  TRACE("leave ptycommand");
  return DROPBEAR_SUCCESS;
}

/** Add the pid of a child to the list for exit-handling. @dropbear svr-chansession.c addchildpid */
function addchildpid(ses: SvrSession, chansess: ChanSess, pid: number): void {
  const svr_ses = ses.svr_ses;
  let i = svr_ses.childpids.findIndex((cp) => cp.pid === -1);
  if (i < 0) {
    // Need to increase size.
    svr_ses.childpids.push({ pid: -1, chansess: null });
    i = svr_ses.childpids.length - 1;
  }
  TRACE(() => `addchildpid ${i} pid ${pid}`);
  svr_ses.childpids[i] = { pid, chansess };
}

/**
 * Set up the child's environment and directory and start the command or shell with the
 * user's shell. The environment is Dropbear's: cleared unless -e, then USER, LOGNAME, HOME,
 * SHELL, PATH (DEFAULT_ROOT_PATH for root), LANG from our own environment, TERM, SSH_TTY,
 * SSH_CONNECTION, SSH_CLIENT, SSH_ORIGINAL_COMMAND, SSH_PUBKEYINFO and SSH_AUTH_SOCK — plus MAIL
 * and the client's LANG/LC_* ("env"), which Dropbear does not set (docs/deviations.md). The
 * process already runs as the user (svr_switch_user after auth). C wipes the host key and the
 * PRNG state in the forked child; a spawned child never had them. Returns the child's pid, or
 * ≤ 0 if it could not be started. @dropbear svr-chansession.c execchild
 */
function execchild(data: ExecData, child: SpawnChild): number {
  const { ses, chansess } = data;
  const svr_opts = ses.svr_ses.svr_opts;
  const a = ses.authstate;
  // Our environment's bytes, as C's getenv and environ give them (not UTF-8 too).
  const cp = envBytes("LANG");
  const addvar = (param: string, value: string | Uint8Array): void => addnewvar(child, param, value);

  // Clear the environment unless -e was given: C clears environ; our child starts from an
  // empty one, or from a copy of ours.
  if (svr_opts.pass_on_env) {
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined) {
        addvar(k, envBytes(k) ?? v);
      }
    }
  }

  // Set env vars.
  addvar("USER", a.pw_name!);
  addvar("LOGNAME", a.pw_name!);
  const home = homePath(a);
  addvar("HOME", home);
  const usershell = get_user_shell_path(ses);
  addvar("SHELL", usershell);
  addvar("PATH", process.getuid!() === 0 ? DEFAULT_ROOT_PATH : DEFAULT_PATH);
  addvar("MAIL", `${MAILDIR}/${a.pw_name}`);
  if (cp !== null) {
    addvar("LANG", cp);
  }
  for (const [name, value] of chansess.clientenv ?? []) {
    addvar(name, value);
  }
  if (chansess.term !== null) {
    addvar("TERM", chansess.term);
  }
  if (chansess.tty !== null) {
    addvar("SSH_TTY", chansess.tty);
  }
  if (chansess.connection_string !== null) {
    addvar("SSH_CONNECTION", chansess.connection_string);
  }
  if (chansess.client_string !== null) {
    addvar("SSH_CLIENT", chansess.client_string);
  }
  if (chansess.original_command !== null) {
    addvar("SSH_ORIGINAL_COMMAND", chansess.original_command);
  }
  if (a.pubkey_options !== null && a.pubkey_options.info_env !== null) {
    addvar("SSH_PUBKEYINFO", a.pubkey_options.info_env);
  }

  // Change directory: the home directory, else "/" with C's message on the child's stderr.
  const homeerr = chdir_error(home);
  if (homeerr === null) {
    child.actions.push({ op: "chdir", path: home });
  } else {
    if (chdir_error("/") !== null) {
      dropbear_exit('chdir("/") failed');
    }
    child.actions.push({ op: "chdir", path: "/" });
    if (child.stderrfd >= 0) {
      try {
        writeSync(child.stderrfd, Buffer.concat([Buffer.from("Failed chdir '"), home, Buffer.from(`': ${homeerr}\n`)]));
      } catch {
        // The message is best effort, as C's fprintf.
      }
    }
  }

  if (DROPBEAR_SVR_AGENTFWD) {
    // Set up the agent env variable.
    svr_agentset(ses, chansess, (param, value) => addvar(param, value));
  }

  const pid = run_shell_command(child, chansess.cmd, usershell);
  if (pid <= 0) {
    // C's child would die here with "Child failed"; posix_spawn reports it to us instead.
    dropbear_log(LOG_WARNING, `Child failed: ${usershell.toString("utf8")}: ${strerror_errno(-pid)}`);
  }
  return pid;
}

/**
 * Why chdir(dir) would fail for us (and so for the child, which runs as the same user), as
 * strerror says it, or null if it would succeed.
 */
function chdir_error(dir: string | Buffer): string | null {
  try {
    if (!statSync(dir).isDirectory()) {
      return strerror_code("ENOTDIR");
    }
    accessSync(dir, fsConstants.X_OK);
    return null;
  } catch (e) {
    return strerror_code((e as NodeJS.ErrnoException).code);
  }
}

/** Wake the loop of every session that has children when one of them exits. @dropbear svr-chansession.c sesssigchild_handler */
function sesssigchild_handler(): void {
  for (const ref of sigchldSessions) {
    const ses = ref.deref();
    if (ses === undefined) {
      sigchldSessions.delete(ref);
      continue;
    }
    ses.signal_pipe?.raise();
  }
}

/**
 * Set up the child table and SIGCHLD handling: a child's exit raises the session's signal pipe,
 * so the loop wakes and svr_chansess_checksignal reaps it. @dropbear svr-chansession.c svr_chansessinitialise
 */
export function svr_chansessinitialise(ses: SvrSession): void {
  const svr_ses = ses.svr_ses;
  // A single child process initially.
  svr_ses.childpids = [{ pid: -1, chansess: null }];
  svr_ses.lastexit = new exitinfo();
  svr_ses.lastexit.exitpid = -1; // Nothing has exited yet.
  // An embedding program runs its sessions' commands itself: no children, no SIGCHLD handler.
  if (svr_ses.embed !== null) {
    return;
  }
  sigchldSessions.add(new WeakRef(ses));
  if (!sigchldInstalled) {
    process.on("SIGCHLD", sesssigchild_handler);
    sigchldInstalled = true;
  }
}

/**
 * Add a variable to the child's environment, replacing one of the same name (putenv). Values
 * are bytes (the client's TERM, command) or text. @dropbear svr-chansession.c addnewvar
 */
export function addnewvar(child: SpawnChild, param: string, value: string | Uint8Array): void {
  spawnSetenv(child, param, value);
}

/** The "session" channel type of the server. @dropbear svr-chansession.c svrchansess */
export const svrchansess: ChanType<SvrSession> = {
  name: "session",
  inithandler: newchansess,
  check_close: sesscheckclose,
  reqhandler: chansessionrequest,
  closehandler: closechansess,
  cleanup: cleanupchansess,
};
