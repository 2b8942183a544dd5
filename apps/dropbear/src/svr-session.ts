import type { Socket } from "node:net";
import { closeSync, stat } from "node:fs";
import { algo_tables_new } from "@dropbear-ts/algo";
import {
  recv_msg_service_request,
  recv_msg_userauth_request,
  svrAuthCheckDelayed,
  svrAuthCleanup,
  svr_authinitialise,
  svr_switch_user,
} from "@dropbear-ts/auth";
import {
  chaninitialise,
  recv_msg_channel_close,
  recv_msg_channel_data,
  recv_msg_channel_eof,
  recv_msg_channel_open,
  recv_msg_channel_open_confirmation,
  recv_msg_channel_open_failure,
  recv_msg_channel_request,
  recv_msg_channel_window_adjust,
} from "@dropbear-ts/channel";
import { svr_chansess_checksignal, svr_chansessinitialise, svrchansess } from "@dropbear-ts/chansession";
import { SvrSession, type ChanType, type SvrEmbed, type packettype, type runopts, type svr_runopts } from "@dropbear-ts/core";
import { LOG_INFO, LOG_LINE_SIZE, dropbear_close, dropbear_log, get_debug_trace, sameOpenFile, snprintf_str, startsyslog, syslogLine, type DropbearExit } from "@dropbear-ts/dbutil";
import { kexfirstinitialise, recv_msg_kexdh_init, recv_msg_kexinit, recv_msg_newkeys, send_msg_kexinit } from "@dropbear-ts/kex";
import { StreamFd, get_socket_address, hostPortString, set_sock_nodelay } from "@dropbear-ts/netio";
import {
  SSH_EXT_INFO_C,
  SSH_MSG_CHANNEL_CLOSE,
  SSH_MSG_CHANNEL_DATA,
  SSH_MSG_CHANNEL_EOF,
  SSH_MSG_CHANNEL_FAILURE,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_OPEN_FAILURE,
  SSH_MSG_CHANNEL_REQUEST,
  SSH_MSG_CHANNEL_SUCCESS,
  SSH_MSG_CHANNEL_WINDOW_ADJUST,
  SSH_MSG_GLOBAL_REQUEST,
  SSH_MSG_KEXDH_INIT,
  SSH_MSG_KEXINIT,
  SSH_MSG_NEWKEYS,
  SSH_MSG_REQUEST_FAILURE,
  SSH_MSG_REQUEST_SUCCESS,
  SSH_MSG_SERVICE_REQUEST,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_STRICT_KEX_C,
} from "@dropbear-ts/options";
import { svr_chan_streamlocal, svr_chan_tcpdirect, svr_recv_msg_global_request } from "@dropbear-ts/tcpfwd";
import { common_session_init, sigintterm_handler, ignore_recv_response, send_session_identification, session_cleanup, session_loop } from "@dropbear-ts/session-loop";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * The session this process serves, for the exit and log handlers (Dropbear's `ses`): a
 * re-executed child serves exactly one, the listener none.
 */
let current: SvrSession | null = null;

let stderrConnection: boolean | null = null;

/** Whether fd 2 is the socket fd 0 is (inetd's and xinetd's way to start `dropbear -i`). */
function stderrIsConnection(): boolean {
  stderrConnection ??= sameOpenFile(2, 0)?.isSocket() === true;
  return stderrConnection;
}

/**
 * The server's log line: to syslog unless -E, and "[pid] Mon DD HH:MM:SS message" on stderr
 * with -E or while tracing (so traces carry the log lines too). Before syslog is open (errors in
 * the command line itself) the line goes to stderr, so it is never lost, unless stderr is the
 * connection.
 * @dropbear svr-session.c svr_dropbear_log
 */
export function svr_dropbear_log(opts: runopts, priority: number, msg: string): void {
  const printbuf = snprintf_str(msg, LOG_LINE_SIZE);
  let sent = opts.usingsyslog && syslogLine(priority, printbuf);
  if (!sent && opts.usingsyslog && stderrIsConnection()) {
    // A command-line error under inetd or xinetd, which give the connection as stderr too: on
    // stderr it would go to the client, and the admin would find nothing; C sends it to syslog.
    startsyslog("dropbear");
    sent = syslogLine(priority, printbuf);
  }
  if (!sent || get_debug_trace() > 0) {
    const d = new Date();
    const datestr = `${MONTHS[d.getMonth()]} ${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    process.stderr.write(`[${process.pid}] ${datestr} ${printbuf}\n`);
  }
}

/**
 * Log why the server (or this connection) is exiting, prefixed by how far the session got,
 * and clean the session up. @dropbear svr-session.c svr_dropbear_exit
 */
export function svr_dropbear_exit(e: DropbearExit): void {
  svrSessionExit(current, e);
}

/** svr_dropbear_exit for a given session (null before there is one): the library's sessions end here. */
export function svrSessionExit(ses: SvrSession | null, e: DropbearExit): void {
  // C's buffers: char exitmsg[150], fromaddr[60], fullmsg[300].
  const exitmsg = snprintf_str(e.exitmsg, 150);
  const fromaddr = ses?.svr_ses?.addrstring ? snprintf_str(` from <${ses.svr_ses.addrstring}>`, 60) : "";
  let fullmsg: string;
  if (ses === null || !ses.init_done) {
    fullmsg = `Early exit${fromaddr}: ${exitmsg}`;
  } else if (ses.authstate.authdone) {
    fullmsg = `Exit (${ses.authstate.pw_name})${fromaddr}: ${exitmsg}`;
  } else if (ses.authstate.pw_name !== null) {
    fullmsg = `Exit before auth${fromaddr}: (user '${ses.authstate.pw_name}', ${ses.authstate.failcount} fails): ${exitmsg}`;
  } else {
    fullmsg = `Exit before auth${fromaddr}: ${exitmsg}`;
  }
  dropbear_log(LOG_INFO, snprintf_str(fullmsg, 300));
  if (ses !== null) {
    session_cleanup(ses);
  }
}

/** The peer closed the transport. @dropbear svr-session.c svr_remoteclosed */
function svr_remoteclosed(ses: SvrSession): never {
  ses.sock_in?.close();
  ses.sock_in = null;
  ses.sock_out = null;
  dropbear_close("Exited normally");
}

/** Messages the server handles, the busiest first. @dropbear svr-session.c svr_packettypes */
const svr_packettypes: readonly packettype<SvrSession>[] = [
  { type: SSH_MSG_CHANNEL_DATA, handler: recv_msg_channel_data },
  { type: SSH_MSG_CHANNEL_WINDOW_ADJUST, handler: recv_msg_channel_window_adjust },
  { type: SSH_MSG_USERAUTH_REQUEST, handler: recv_msg_userauth_request },
  { type: SSH_MSG_SERVICE_REQUEST, handler: recv_msg_service_request },
  { type: SSH_MSG_KEXINIT, handler: recv_msg_kexinit },
  { type: SSH_MSG_KEXDH_INIT, handler: recv_msg_kexdh_init },
  { type: SSH_MSG_NEWKEYS, handler: recv_msg_newkeys },
  { type: SSH_MSG_GLOBAL_REQUEST, handler: svr_recv_msg_global_request },
  { type: SSH_MSG_CHANNEL_REQUEST, handler: recv_msg_channel_request },
  { type: SSH_MSG_CHANNEL_OPEN, handler: recv_msg_channel_open },
  { type: SSH_MSG_CHANNEL_EOF, handler: recv_msg_channel_eof },
  { type: SSH_MSG_CHANNEL_CLOSE, handler: recv_msg_channel_close },
  { type: SSH_MSG_CHANNEL_SUCCESS, handler: ignore_recv_response },
  { type: SSH_MSG_CHANNEL_FAILURE, handler: ignore_recv_response },
  { type: SSH_MSG_REQUEST_FAILURE, handler: ignore_recv_response },
  { type: SSH_MSG_REQUEST_SUCCESS, handler: ignore_recv_response },
  { type: SSH_MSG_CHANNEL_OPEN_CONFIRMATION, handler: recv_msg_channel_open_confirmation },
  { type: SSH_MSG_CHANNEL_OPEN_FAILURE, handler: recv_msg_channel_open_failure },
];

/** The channel types a client may open. @dropbear svr-session.c svr_chantypes */
const svr_chantypes: readonly ChanType<SvrSession>[] = [svrchansess, svr_chan_tcpdirect, svr_chan_streamlocal];

/**
 * The server's per-iteration work: reap session children that have exited (SIGCHLD raised the
 * signal pipe; C hands svr_chansess_checksignal itself to session_loop), and end the session
 * when a failure delay ended in "Max auth tries" (Dropbear exits within its sleep).
 */
function svr_loophandler(ses: SvrSession): void {
  svr_chansess_checksignal(ses);
  svrAuthCheckDelayed(ses);
}

/** The server never offers the client-side kex markers. @dropbear svr-session.c svr_algos_initialise */
function svr_algos_initialise(ses: SvrSession): void {
  for (const algo of ses.algos.sshkex) {
    if (algo.name === SSH_EXT_INFO_C || algo.name === SSH_STRICT_KEX_C) {
      algo.usable = false;
    }
  }
}

/** Close the childpipe (if still open) when the session goes. @dropbear svr-session.c svr_session_cleanup */
function svr_session_cleanup(ses: SvrSession): void {
  svrAuthCleanup(ses);
  const svr_ses = ses.svr_ses;
  if (svr_ses.childpipe >= 0) {
    try {
      closeSync(svr_ses.childpipe);
    } catch {
      // Already closed by the auth code.
    }
    svr_ses.childpipe = -1;
  }
}

/**
 * Have libuv start its worker threads now, while the process is still root. It starts them at
 * the first request that needs them (dns.lookup of a direct-tcpip or tcpip-forward host name,
 * an asynchronous fs call), and aborts the whole process if one cannot be created; once the
 * process is the user, each thread counts against the user's RLIMIT_NPROC, so a user at that
 * limit lost the connection with no log line (SIGABRT) where Dropbear's fork simply fails.
 * The kernel does not hold root to the limit. A stat of "/" is the cheapest request that does it.
 */
function startWorkerThreads(): void {
  if (process.getuid?.() === 0) {
    stat("/", () => undefined);
  }
}

/**
 * Serve one client on `sock` until the session ends (by a thrown DropbearExit). This process
 * serves only this connection: after auth it becomes the user, and SIGINT/SIGTERM end it.
 * @dropbear svr-session.c svr_session
 */
export async function svr_session(opts: runopts, svr_opts: svr_runopts, sock: StreamFd<Socket>, childpipe: number): Promise<never> {
  const ses = svrSessionNew(opts, svr_opts, sock, childpipe, null);
  ses.owns_process = true;
  current = ses;
  // From now on the OS itself decides who may listen below port 1024 (svr-auth.c sets
  // allowprivport there).
  ses.svr_ses.switch_user = (s) => {
    startWorkerThreads();
    svr_switch_user(s);
    s.allowprivport = true;
  };
  sigintterm_handler(ses);
  return svrSessionRun(ses);
}

/**
 * The first half of svr_session: a session for `sock`, initialised up to ses.init_done, with
 * no process-wide effect (the library's server makes its sessions here, with `embed`).
 */
export function svrSessionNew(opts: runopts, svr_opts: svr_runopts, fd: StreamFd<Socket>, childpipe: number, embed: SvrEmbed | null): SvrSession {
  const ses = new SvrSession(opts, svr_opts);
  set_sock_nodelay(fd.stream);
  common_session_init(ses, fd, fd);
  const svr_ses = ses.svr_ses;
  svr_ses.embed = embed;
  chaninitialise(ses, svr_chantypes);
  svr_chansessinitialise(ses);
  svr_ses.childpipe = childpipe;
  const { remote_host, remote_port } = get_socket_address(fd);
  svr_ses.addrstring = hostPortString(remote_host, remote_port);
  svr_authinitialise(ses);
  ses.algos = algo_tables_new(opts.algos);
  svr_algos_initialise(ses);
  svr_ses.remotehost = remote_host;
  ses.remoteclosed = svr_remoteclosed;
  ses.extra_session_cleanup = svr_session_cleanup;
  ses.packettypes = svr_packettypes;
  ses.init_done = true;
  return ses;
}

/** The second half of svr_session: identification, the first KEXINIT, then the loop. */
export function svrSessionRun(ses: SvrSession): Promise<never> {
  send_session_identification(ses);
  kexfirstinitialise(ses);
  send_msg_kexinit(ses);
  return session_loop(ses, svr_loophandler);
}
