import { algo_tables_new, first_usable_algo } from "@dropbear-ts/algo";
import {
  cli_auth_getmethods,
  cli_auth_try,
  recv_msg_userauth_banner,
  recv_msg_userauth_failure,
  recv_msg_userauth_specific_60,
  recv_msg_userauth_success,
} from "@dropbear-ts/auth";
import { buf_eatstring, buf_getbool, buf_putbyte, buf_putstring } from "@dropbear-ts/buffer";
import {
  chaninitialise,
  handOverPeerData,
  recv_msg_channel_close,
  recv_msg_channel_data,
  recv_msg_channel_eof,
  recv_msg_channel_extended_data,
  recv_msg_channel_open,
  recv_msg_channel_open_confirmation,
  recv_msg_channel_open_failure,
  recv_msg_channel_request,
  recv_msg_channel_window_adjust,
} from "@dropbear-ts/channel";
import { cryptoBackend } from "@dropbear-ts/crypto";
import { cli_kex_state, cli_state, CliSession, type ChanType, type cli_runopts, type packettype, type runopts } from "@dropbear-ts/core";
import { EXIT_FLUSH_MS, LOG_INFO, LOG_LINE_SIZE, QuietExit, TRACE, TRACE2, detachedCopyReady, disallow_core, dropbear_exit, dropbear_log, exitFlushMs, snprintf_str, syslogLine, type DropbearExit } from "@dropbear-ts/dbutil";
import {
  cliFlushStdio,
  cliRecvChannelReply,
  cliTtyCleanupAfterOutput,
  cli_chansess_break,
  cli_chansess_winchange,
  cli_send_chansess_request,
  cli_send_netcat_request,
  getFdFlags,
  setFdFlags,
} from "@dropbear-ts/chansession";
import {
  cliKexCleanup,
  cliKexParamAhead,
  cliPreferKnownHostkeyAlgos,
  kexfirstinitialise,
  recv_msg_ext_info,
  recv_msg_kexdh_reply,
  recv_msg_kexinit,
  recv_msg_newkeys,
  send_msg_kexdh_init,
  send_msg_kexinit,
} from "@dropbear-ts/kex";
import { connect_remote, dropbear_prio, set_sock_nodelay, set_sock_priority, type StreamFd, connect_set_writequeue, hostPortString } from "@dropbear-ts/netio";
import {
  SSH_MSG_CHANNEL_CLOSE,
  SSH_MSG_CHANNEL_DATA,
  SSH_MSG_CHANNEL_EOF,
  SSH_MSG_CHANNEL_EXTENDED_DATA,
  SSH_MSG_CHANNEL_FAILURE,
  SSH_MSG_CHANNEL_OPEN,
  SSH_MSG_CHANNEL_OPEN_CONFIRMATION,
  SSH_MSG_CHANNEL_OPEN_FAILURE,
  SSH_MSG_CHANNEL_REQUEST,
  SSH_MSG_CHANNEL_SUCCESS,
  SSH_MSG_CHANNEL_WINDOW_ADJUST,
  SSH_MSG_EXT_INFO,
  SSH_MSG_GLOBAL_REQUEST,
  SSH_MSG_KEXDH_REPLY,
  SSH_MSG_KEXINIT,
  SSH_MSG_NEWKEYS,
  SSH_MSG_REQUEST_FAILURE,
  SSH_MSG_REQUEST_SUCCESS,
  SSH_MSG_SERVICE_ACCEPT,
  SSH_MSG_SERVICE_REQUEST,
  SSH_MSG_USERAUTH_BANNER,
  SSH_MSG_USERAUTH_FAILURE,
  SSH_MSG_USERAUTH_SPECIFIC_60,
  SSH_MSG_USERAUTH_SUCCESS,
  SSH_SERVICE_USERAUTH,
  SSH_STRICT_KEX_S,
  DROPBEAR_SUCCESS,
} from "@dropbear-ts/options";
import { encrypt_packet, write_packet } from "@dropbear-ts/packet";
import { cli_chan_tcpremote, cli_recv_msg_request_failure, cli_recv_msg_request_success, remotetcp_pending, setup_localtcp, setup_remotetcp, warm_localtcp } from "@dropbear-ts/tcpfwd";
import { common_session_init, send_session_identification, session_cleanup, session_loop } from "@dropbear-ts/session-loop";
import type { Socket } from "node:net";
import { cliAgentOps, cli_chan_agent } from "@dropbear-ts/agentfwd";
import { background_stdin } from "./cli-background.js";
import { kill_proxy_command } from "./cli-main.js";

/**
 * The client's log line: "<progname>: message" on stderr, and to syslog too with
 * -o UseSyslog=yes.
 * @dropbear cli-session.c cli_dropbear_log
 */
export function cli_dropbear_log(opts: runopts, cli_opts: cli_runopts, priority: number, msg: string): void {
  const printbuf = snprintf_str(msg, LOG_LINE_SIZE);
  if (opts.usingsyslog) {
    syslogLine(priority, printbuf);
  }
  process.stderr.write(`${cli_opts.progname ?? "dbclient"}: ${printbuf}\n`);
}

/**
 * Log why the client is exiting ("Connection to user@host:port exited: ...") and clean up.
 * `ses` is the program's session (C's global), null before there is one.
 * @dropbear cli-session.c cli_dropbear_exit
 */
export function cli_dropbear_exit(ses: CliSession | null, e: DropbearExit): void {
  // C's buffers: char exitmsg[400], fullmsg[550].
  const exitmsg = snprintf_str(e.exitmsg, 400);
  TRACE(() => `Exited, cleaning up: ${exitmsg}`);
  let fullmsg: string;
  if (ses === null || !ses.init_done) {
    fullmsg = `Exited: ${exitmsg}`;
  } else {
    const o = ses.cli_ses.cli_opts;
    fullmsg = `Connection to ${o.username}@${hostPortString(o.remotehost ?? "", o.remoteport ?? "")} exited: ${exitmsg}`;
  }
  fullmsg = snprintf_str(fullmsg, 550);
  // Cleanup first: it puts the terminal back, so the message prints in cooked mode.
  if (ses !== null) {
    session_cleanup(ses);
  }
  // A blank line first so the message does not land after terminal output.
  process.stderr.write("\n");
  dropbear_log(LOG_INFO, fullmsg);
}

/** The transport reached EOF. @dropbear cli-session.c cli_remoteclosed */
function cli_remoteclosed(ses: CliSession): never {
  ses.sock_in?.close();
  ses.sock_out?.close();
  ses.sock_in = null;
  ses.sock_out = null;
  dropbear_exit("Remote closed the connection", "ECLOSED");
}

/** Ask for a service by name. @dropbear cli-session.c send_msg_service_request */
function send_msg_service_request(ses: CliSession, servicename: string): void {
  TRACE("enter send_msg_service_request");
  buf_putbyte(ses.writepayload, SSH_MSG_SERVICE_REQUEST);
  buf_putstring(ses.writepayload, servicename);
  encrypt_packet(ses);
  TRACE("leave send_msg_service_request");
}

/** Nothing to do: auth requests go out without waiting for it (RFC 4253 §10). @dropbear cli-session.c recv_msg_service_accept */
function recv_msg_service_accept(_ses: CliSession): void {
  TRACE("recv_msg_service_accept");
}

/** We answer no global requests: refuse any that wants a reply. @dropbear cli-session.c recv_msg_global_request_cli */
function recv_msg_global_request_cli(ses: CliSession): void {
  const payload = ses.payload!;
  buf_eatstring(payload);
  const wantreply = buf_getbool(payload);
  TRACE(() => `recv_msg_global_request_cli: want_reply: ${wantreply}`);
  if (wantreply) {
    buf_putbyte(ses.writepayload, SSH_MSG_REQUEST_FAILURE);
    encrypt_packet(ses);
  }
}

/** Messages the client handles, the busiest first. @dropbear cli-session.c cli_packettypes */
const cli_packettypes: readonly packettype<CliSession>[] = [
  { type: SSH_MSG_CHANNEL_DATA, handler: recv_msg_channel_data },
  { type: SSH_MSG_CHANNEL_EXTENDED_DATA, handler: recv_msg_channel_extended_data },
  { type: SSH_MSG_CHANNEL_WINDOW_ADJUST, handler: recv_msg_channel_window_adjust },
  { type: SSH_MSG_USERAUTH_FAILURE, handler: recv_msg_userauth_failure },
  { type: SSH_MSG_USERAUTH_SUCCESS, handler: recv_msg_userauth_success },
  { type: SSH_MSG_KEXINIT, handler: recv_msg_kexinit },
  { type: SSH_MSG_KEXDH_REPLY, handler: recv_msg_kexdh_reply },
  { type: SSH_MSG_NEWKEYS, handler: recv_msg_newkeys },
  { type: SSH_MSG_SERVICE_ACCEPT, handler: recv_msg_service_accept },
  { type: SSH_MSG_CHANNEL_REQUEST, handler: recv_msg_channel_request },
  { type: SSH_MSG_CHANNEL_OPEN, handler: recv_msg_channel_open },
  { type: SSH_MSG_CHANNEL_EOF, handler: recv_msg_channel_eof },
  { type: SSH_MSG_CHANNEL_CLOSE, handler: recv_msg_channel_close },
  { type: SSH_MSG_CHANNEL_OPEN_CONFIRMATION, handler: recv_msg_channel_open_confirmation },
  { type: SSH_MSG_CHANNEL_OPEN_FAILURE, handler: recv_msg_channel_open_failure },
  { type: SSH_MSG_USERAUTH_BANNER, handler: recv_msg_userauth_banner },
  { type: SSH_MSG_USERAUTH_SPECIFIC_60, handler: recv_msg_userauth_specific_60 },
  { type: SSH_MSG_GLOBAL_REQUEST, handler: recv_msg_global_request_cli },
  { type: SSH_MSG_CHANNEL_SUCCESS, handler: (ses) => cliRecvChannelReply(ses, true) },
  { type: SSH_MSG_CHANNEL_FAILURE, handler: (ses) => cliRecvChannelReply(ses, false) },
  // Answers to our -R requests (keepalive answers land here too, as in Dropbear).
  { type: SSH_MSG_REQUEST_SUCCESS, handler: cli_recv_msg_request_success },
  { type: SSH_MSG_REQUEST_FAILURE, handler: cli_recv_msg_request_failure },
  { type: SSH_MSG_EXT_INFO, handler: recv_msg_ext_info },
];

/** The channel types the server may open to us. @dropbear cli-session.c cli_chantypes */
const cli_chantypes: readonly ChanType<CliSession>[] = [cli_chan_tcpremote, cli_chan_agent];

/**
 * The client never offers the server-side strict-kex marker; beyond Dropbear, the host key
 * types known_hosts holds for the host go first. @dropbear cli-session.c cli_algos_initialise
 */
function cli_algos_initialise(ses: CliSession): void {
  for (const algo of ses.algos.sshkex) {
    if (algo.name === SSH_STRICT_KEX_S) {
      algo.usable = false;
    }
  }
  cliPreferKnownHostkeyAlgos(ses);
}

/**
 * Our kex guess follows our KEXINIT (not built in here: DROPBEAR_KEX_FIRST_FOLLOWS). Beyond
 * Dropbear: while the TCP connection is still being made (the first exchange), the guess waits
 * until it is up and our ident and KEXINIT are on their way (cliKexAhead). The same packets go
 * in the same order. @dropbear cli-session.c cli_send_kex_first_guess
 */
function cli_send_kex_first_guess(ses: CliSession): void {
  if (ses.sock_out === null) {
    ses.cli_ses.kex_ahead_pending = true;
    return;
  }
  send_msg_kexdh_init(ses);
}

/**
 * TS-only: the first kex's work before the server's KEXINIT, once the connection is up: the
 * guess cli_send_kex_first_guess held back, or without a guess our first method's key pair
 * (cliKexParamAhead: tens of milliseconds in a fresh process). What is queued is written first
 * and the work done a turn later, so that our ident and KEXINIT reach the server meanwhile.
 */
function cliKexAhead(ses: CliSession): Promise<void> | undefined {
  if (ses.sock_out === null || !ses.cli_ses.kex_ahead_pending) {
    return undefined;
  }
  ses.cli_ses.kex_ahead_pending = false;
  write_packet(ses);
  const first = first_usable_algo(ses.algos.sshkex)?.data ?? null;
  return new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
    if (ses.send_kex_first_guess !== null) {
      send_msg_kexdh_init(ses);
    } else if (first !== null) {
      cliKexParamAhead(ses, first);
    }
  });
}

/**
 * The client's state machine, run once per loop iteration: answer the server's KEXINIT, then
 * once the transport is up ask for user auth. @dropbear cli-session.c cli_sessionloop
 */
function cli_sessionloop(ses: CliSession): void | Promise<void> {
  TRACE2("enter cli_sessionloop");
  const cli_ses = ses.cli_ses;
  const ahead = cliKexAhead(ses);
  if (ahead !== undefined) {
    // Nothing has been read yet: the connection has only just come up.
    return ahead;
  }
  if (ses.lastpacket === 0) {
    TRACE2("exit cli_sessionloop: no real packets yet");
    return;
  }
  if (ses.lastpacket === SSH_MSG_KEXINIT && cli_ses.kex_state === cli_kex_state.KEX_NOTHING) {
    cli_ses.kex_state = cli_kex_state.KEXDH_INIT_SENT;
    TRACE("leave cli_sessionloop: done with KEXINIT_RCVD");
    // Our guess already sent the right KEXDH_INIT if it matched.
    if (!ses.kexstate.our_first_follows_matches) {
      send_msg_kexdh_init(ses);
    }
    return;
  }
  if (cli_ses.kex_state !== cli_kex_state.KEX_NOTHING && ses.kexstate.sentnewkeys) {
    cli_ses.kex_state = cli_kex_state.KEX_NOTHING;
  }
  if (cli_ses.kex_state !== cli_kex_state.KEX_NOTHING) {
    TRACE("leave cli_sessionloop: kex_state != KEX_NOTHING");
    return;
  }
  if (!ses.kexstate.donefirstkex) {
    TRACE2("donefirstkex false");
    return;
  }
  switch (cli_ses.state) {
    case cli_state.STATE_NOTHING:
      // No "implicit server authentication": auth requests need not wait for SERVICE_ACCEPT.
      send_msg_service_request(ses, SSH_SERVICE_USERAUTH);
      cli_auth_getmethods(ses);
      cli_ses.state = cli_state.USERAUTH_REQ_SENT;
      TRACE("leave cli_sessionloop: sent userauth methods req");
      return;
    case cli_state.USERAUTH_REQ_SENT:
      TRACE("leave cli_sessionloop: waiting, req_sent");
      return;
    case cli_state.USERAUTH_FAIL_RCVD:
      if (!cli_auth_try(ses)) {
        dropbear_exit("No auth methods could be used.", "EAUTH");
      }
      cli_ses.state = cli_state.USERAUTH_REQ_SENT;
      TRACE("leave cli_sessionloop: cli_auth_try");
      return;
    case cli_state.USERAUTH_SUCCESS_RCVD:
      if (ses.opts.usingsyslog) {
        dropbear_log(LOG_INFO, "Authentication succeeded.");
      }
      return cli_session_running(ses);
    case cli_state.SESSION_RUNNING:
      if (cli_ses.background_pending && !remotetcp_pending(ses)) {
        cli_ses.background_pending = false;
        detachedCopyReady();
      }
      // The session channel (and any forward) is gone: the program is done.
      if (ses.chancount < 1 && !cli_ses.cli_opts.no_cmd) {
        cli_finished(ses);
      }
      if (cli_ses.winchange) {
        cli_chansess_winchange(ses);
      }
      if (cli_ses.sendbreak) {
        cli_chansess_break(ses);
      }
      return;
    default:
      break;
  }
  TRACE2("leave cli_sessionloop: fell out");
}

/**
 * After auth: start what the command line asked for (session or netcat channel, -L, -R) and
 * go to SESSION_RUNNING. Awaited by the loop: binding the -L ports blocks as it does in C.
 * @dropbear cli-session.c cli_sessionloop
 */
async function cli_session_running(ses: CliSession): Promise<void> {
  const cli_opts = ses.cli_ses.cli_opts;
  if (cli_opts.backgrounded) {
    background_stdin();
  }
  if (cli_opts.netcat_host !== null) {
    cli_send_netcat_request(ses);
  } else if (!cli_opts.no_cmd) {
    cli_send_chansess_request(ses);
  }
  await setup_localtcp(ses);
  setup_remotetcp(ses);
  if (cli_opts.backgrounded) {
    // The foreground process may leave: once the -L listeners are bound, not at C's daemon()
    // point just before (C binds them microseconds later, ours asynchronously, and whoever ran
    // `dbclient -f` expects the ports to answer once it returns). And, as C's daemon(0, 1),
    // out of the working directory, which a background process must not keep busy.
    process.chdir("/");
    if (cli_opts.exit_on_fwd_failure && remotetcp_pending(ses)) {
      // A refusal still to come must end the foreground with its status: released once all
      // -R answers are in (cli_sessionloop); a refusal ends the copy first (fwd_failed).
      ses.cli_ses.background_pending = true;
    } else {
      detachedCopyReady();
    }
  }
  TRACE("leave cli_sessionloop: running");
  ses.cli_ses.state = cli_state.SESSION_RUNNING;
}

/**
 * Prepare the client half of the session. `stdio` is false for a library caller's session,
 * which never touches our fds 0-2. @dropbear cli-session.c cli_session_init
 */
function cli_session_init(ses: CliSession, proxy_cmd_pid: number, stdio: boolean): void {
  const cli_ses = ses.cli_ses;
  cli_ses.state = cli_state.STATE_NOTHING;
  cli_ses.kex_state = cli_kex_state.KEX_NOTHING;
  cli_ses.tty_raw_mode = false;
  cli_ses.winchange = false;
  // Our stdio streams make fds 0-2 non-blocking; their flags go back at exit (busybox ash
  // misbehaves otherwise, as Dropbear notes).
  if (stdio) {
    cli_ses.stdinflags = getFdFlags(0);
    cli_ses.stdoutflags = getFdFlags(1);
    cli_ses.stderrflags = getFdFlags(2);
  }
  // 0 unless the server sends an exit-status.
  cli_ses.retval = 0;
  cli_ses.proxy_cmd_pid = proxy_cmd_pid;
  TRACE(() => `proxy command PID='${proxy_cmd_pid}'`);
  cli_ses.lastauthtype = 0;
  cli_ses.is_trivial_auth = true;
  ses.remoteclosed = cli_remoteclosed;
  ses.extra_session_cleanup = cli_session_cleanup;
  ses.packettypes = cli_packettypes;
  ses.send_kex_first_guess = cli_ses.cli_opts.kex_first_guess ? cli_send_kex_first_guess : null;
  // Without a guess, the first kex's key pair is still made ahead (cliKexAhead).
  cli_ses.kex_ahead_pending = ses.send_kex_first_guess === null;
}

/** Put fds 0-2's flags back and the terminal out of raw mode. @dropbear cli-session.c cli_session_cleanup */
function cli_session_cleanup(ses: CliSession): void {
  if (!ses.init_done) {
    return;
  }
  const cli_ses = ses.cli_ses;
  kill_proxy_command(ses);
  setFdFlags(0, cli_ses.stdinflags);
  setFdFlags(1, cli_ses.stdoutflags);
  setFdFlags(2, cli_ses.stderrflags);
  // Once the output already given to the terminal is in it: session_loop's end waits for that.
  cliTtyCleanupAfterOutput(ses);
  cliKexCleanup(ses);
}

/** The last channel is gone: clean up and exit with the remote command's status. @dropbear cli-session.c cli_finished */
function cli_finished(ses: CliSession): never {
  TRACE("cli_finished()");
  session_cleanup(ses);
  // A quiet exit: the app root prints nothing and exits with this status (C's exit(retval)).
  throw new QuietExit(ses.cli_ses.retval & 0xff);
}

/** The connection is up (or failed). @dropbear cli-session.c cli_connected */
function cli_connected(ses: CliSession, result: number, sock: StreamFd | null, errstring: string | null): void {
  if (result !== DROPBEAR_SUCCESS || sock === null) {
    dropbear_exit(`Connect failed: ${errstring}`, "ECONNECT");
  }
  set_sock_nodelay(sock.stream as Socket);
  ses.sock_in = sock;
  ses.sock_out = sock;
  // Beyond C, which marks the socket before connect() and limits core files first thing in
  // main: the priority, the core limit and the OpenSSL ciphers all need the FFI library, whose
  // loading (about 5 ms) would delay our first flight (ident, KEXINIT, kex guess); they are done
  // while the server works on its KEXDH_REPLY instead. Only those first packets go out unmarked.
  // Then the name lookup that setup_localtcp will need.
  ses.idle_work.push(
    () => {
      if (!sock.closed) {
        set_sock_priority(sock, dropbear_prio.DROPBEAR_PRIO_LOWDELAY, ses.opts.disable_ip_tos);
      }
    },
    () => {
      // The dbclient program's own process only: a library caller's process is not ours to limit.
      if (ses.owns_process) {
        disallow_core();
      }
    },
    () => void cryptoBackend(),
    () => void warm_localtcp(ses),
  );
  TRACE("cli_connected");
}

/** The client's session object (C's global ses), with the agent's calls for publickey auth. */
export function cli_session_new(opts: runopts, cli_opts: cli_runopts): CliSession {
  const ses = new CliSession(opts, cli_opts);
  ses.cli_ses.agent = cliAgentOps;
  return ses;
}

/**
 * Run the client session until it ends (by a thrown DropbearExit): over the proxy's
 * sock_in/sock_out when given, else over a TCP connection to remotehost made here (C's main
 * starts it and hands cli_session the progress; the pending list lives on the session here).
 * A library caller's `onturn` runs after cli_sessionloop in every loop turn: it watches the
 * session's progress and starts what the caller asked for, inside the loop as dbclient's own
 * requests are. Signal handlers are the program's to install (main.ts), never a library's.
 * @dropbear cli-session.c cli_session
 */
export async function cli_session(
  ses: CliSession,
  sock_in: StreamFd | null,
  sock_out: StreamFd | null,
  proxy_cmd_pid: number,
  onturn: ((ses: CliSession) => void | Promise<void>) | null = null,
): Promise<never> {
  const opts = ses.opts;
  const cli_opts = ses.cli_ses.cli_opts;
  common_session_init(ses, sock_in, sock_out);
  if (sock_in === null) {
    const progress = connect_remote(
      ses.conn_pending,
      cli_opts.remotehost!,
      cli_opts.remoteport!,
      (result, sock, errstring) => cli_connected(ses, result, sock, errstring),
      cli_opts.bind_address,
      cli_opts.bind_port,
      null, // set by cli_connected's idle work
    );
    connect_set_writequeue(progress, ses.writequeue);
  }
  ses.algos = algo_tables_new(opts.algos);
  chaninitialise(ses, cli_chantypes);
  cli_algos_initialise(ses);
  cli_session_init(ses, proxy_cmd_pid, onturn === null);
  ses.init_done = true;
  send_session_identification(ses);
  kexfirstinitialise(ses);
  send_msg_kexinit(ses);
  const loophandler =
    onturn === null
      ? cli_sessionloop
      : (s: CliSession): void | Promise<void> => {
          const pending = cli_sessionloop(s);
          if (pending !== undefined) {
            return pending.then(() => onturn(s));
          }
          return onturn(s);
        };
  try {
    return await session_loop(ses, loophandler);
  } catch (e) {
    // The end of the output may still be in a channel's ring (a server that disconnected).
    handOverPeerData(ses);
    await new Promise<void>((resolve) => cliTtyCleanupAfterOutput(ses, resolve));
    // What our stdout/stderr streams accepted would be in the kernel already in C: let it out
    // (for a normal end as long as the reader takes; otherwise briefly) before the exit.
    await cliFlushStdio(ses, e instanceof QuietExit ? null : onturn === null ? exitFlushMs() : EXIT_FLUSH_MS);
    throw e;
  }
}
