import { buf_getint, buf_getstring, buf_putbyte, buf_putint, buf_putstring } from "@dropbear-ts/buffer";
import { channel_connect_done, send_msg_channel_open_init, streamChannelGone, streamChannelOpened, streamChannelRefused } from "@dropbear-ts/channel";
import {
  FwdListener,
  SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
  SSH_OPEN_IN_PROGRESS,
  type ChanType,
  type Channel,
  type Listener,
  type StreamChannel,
  type TCPFwdEntry,
  type CliSession,
} from "@dropbear-ts/core";
import { LOG_INFO, LOG_WARNING, TRACE, dropbear_exit, dropbear_log, cleantext } from "@dropbear-ts/dbutil";
import { connect_remote, dropbear_prio, warm_listen_lookup } from "@dropbear-ts/netio";
import { SSH_MSG_GLOBAL_REQUEST, DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { listen_tcpfwd } from "./tcp-accept.js";

/** Our -L channels: "direct-tcpip", opened by us only. @dropbear cli-tcpfwd.c cli_chan_tcplocal */
const cli_chan_tcplocal: ChanType<CliSession> = {
  name: "direct-tcpip",
  inithandler: null,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};

/** A forward could not be set up: fatal with -o ExitOnForwardFailure=yes, else a warning. @dropbear cli-tcpfwd.c fwd_failed */
function fwd_failed(ses: CliSession, msg: string): void {
  if (ses.cli_ses.cli_opts.exit_on_fwd_failure) {
    dropbear_exit(msg);
  }
  dropbear_log(LOG_WARNING, msg);
}

/** printf's rendering of a possibly NULL string. */
function str(s: string | null): string {
  return s ?? "(null)";
}

/** Listen for every -L once authenticated. @dropbear cli-tcpfwd.c setup_localtcp */
export async function setup_localtcp(ses: CliSession): Promise<void> {
  TRACE("enter setup_localtcp");
  for (const fwd of ses.cli_ses.cli_opts.localfwds) {
    const ret = await cli_localtcp(ses, fwd.listenaddr, fwd.listenport, fwd.connectaddr, fwd.connectport);
    if (ret === null) {
      fwd_failed(ses, `Failed local port forward ${str(fwd.listenaddr)}:${fwd.listenport}:${str(fwd.connectaddr)}:${fwd.connectport}`);
    }
  }
  TRACE("leave setup_localtcp");
}

/** Where a -L or -R listens: its own address, else "localhost", or all interfaces ("") with -g. */
function fwd_listenaddr(ses: CliSession, listenaddr: string | null): string {
  return listenaddr ?? (ses.opts.listen_fwd_all ? "" : "localhost");
}

/**
 * Beyond C: the first -L listen address that is a name ("localhost" unless given) looked up
 * once while the session still authenticates, so that setup_localtcp's listeners are up sooner
 * after USERAUTH_SUCCESS (netio's warm_listen_lookup). Run from the loop's idle work; returns
 * the name, or null when every -L listens on a numeric address (or there is none).
 */
export function warm_localtcp(ses: CliSession): string | null {
  for (const fwd of ses.cli_ses.cli_opts.localfwds) {
    const addr = fwd_listenaddr(ses, fwd.listenaddr);
    if (warm_listen_lookup(addr)) {
      return addr;
    }
  }
  return null;
}

/**
 * One -L: listen on listenaddr:listenport ("localhost" unless given, all interfaces with -g)
 * and open a direct-tcpip channel to remoteaddr:remoteport for each connection. Returns the
 * listener (C: DROPBEAR_SUCCESS), whose sockets tell a library caller the port bound for 0;
 * null on failure.
 * @dropbear cli-tcpfwd.c cli_localtcp
 */
export async function cli_localtcp(
  ses: CliSession,
  listenaddr: string | null,
  listenport: number,
  remoteaddr: string | null,
  remoteport: number,
): Promise<Listener | null> {
  TRACE(() => `enter cli_localtcp: ${listenport} ${remoteaddr} ${remoteport}`);
  const tcpinfo = new FwdListener<CliSession>();
  tcpinfo.sendaddr = remoteaddr;
  tcpinfo.sendport = remoteport;
  tcpinfo.listenaddr = fwd_listenaddr(ses, listenaddr);
  tcpinfo.listenport = listenport;
  tcpinfo.chantype = cli_chan_tcplocal;
  tcpinfo.fwd_type = "direct";
  const listener = await listen_tcpfwd(ses, tcpinfo);
  TRACE(() => `leave cli_localtcp: ${listener !== null ? DROPBEAR_SUCCESS : DROPBEAR_FAILURE}`);
  return listener;
}

/** A library caller's direct-tcpip channel, on its own streams instead of an accepted socket. */
const cli_chan_tcpstream: ChanType<CliSession> = {
  name: "direct-tcpip",
  inithandler: (_ses, channel) => {
    streamChannelOpened(channel);
    return 0;
  },
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: streamChannelGone,
  openfailed: streamChannelRefused,
};

/**
 * Ask the server for a direct-tcpip channel to host:port carried on a library caller's
 * streams (ssh2's forwardOut), with the originator given as orighost:origport, as
 * tcp_acceptor asks for each -L connection. DROPBEAR_FAILURE when no channel slot is free.
 */
export function cliOpenStreamDirect(ses: CliSession, sc: StreamChannel, host: string, port: number, orighost: string, origport: number): number {
  if (send_msg_channel_open_init(ses, sc.readfd, cli_chan_tcpstream, sc) === DROPBEAR_FAILURE) {
    return DROPBEAR_FAILURE;
  }
  buf_putstring(ses.writepayload, host);
  buf_putint(ses.writepayload, port);
  buf_putstring(ses.writepayload, orighost);
  buf_putint(ses.writepayload, origport);
  encrypt_packet(ses);
  return DROPBEAR_SUCCESS;
}

/**
 * Ask the server to listen for us (a -R). Returns the request's number among our global
 * requests, whose reply answers it (TCPFwdEntry.globalreq).
 * @dropbear cli-tcpfwd.c send_msg_global_request_remotetcp
 */
export function send_msg_global_request_remotetcp(ses: CliSession, addr: string, port: number): number {
  TRACE("enter send_msg_global_request_remotetcp");
  buf_putbyte(ses.writepayload, SSH_MSG_GLOBAL_REQUEST);
  buf_putstring(ses.writepayload, "tcpip-forward");
  buf_putbyte(ses.writepayload, 1);
  buf_putstring(ses.writepayload, addr);
  buf_putint(ses.writepayload, port);
  encrypt_packet(ses);
  TRACE("leave send_msg_global_request_remotetcp");
  return ses.globalreq_sent++;
}

/**
 * The -R a REQUEST_SUCCESS or FAILURE answers, or null for a keepalive's answer (or one nobody
 * asked for, which is not counted). Beyond C, which gives every reply to the first -R still
 * waiting: a keepalive sent before a library caller's -R was answered first, and its
 * REQUEST_FAILURE refused that -R. OpenSSH's ssh pairs them so too; like it, we count no
 * UNIMPLEMENTED as an answer (a server that sends one for a keepalive, which RFC 4254 §4 does
 * not allow, would leave a later -R unanswered).
 */
function answeredForward(ses: CliSession): TCPFwdEntry | null {
  if (ses.globalreq_answered >= ses.globalreq_sent) {
    return null;
  }
  const n = ses.globalreq_answered++;
  for (const fwd of ses.cli_ses.cli_opts.remotefwds) {
    if (!fwd.have_reply && fwd.globalreq === n) {
      return fwd;
    }
  }
  return null;
}

/** Whether some -R request still waits for the server's answer. */
export function remotetcp_pending(ses: CliSession): boolean {
  for (const fwd of ses.cli_ses.cli_opts.remotefwds) {
    if (!fwd.have_reply) {
      return true;
    }
  }
  return false;
}

/**
 * REQUEST_SUCCESS: the next -R is set up; for port 0 the server says which port it took.
 * @dropbear cli-tcpfwd.c cli_recv_msg_request_success
 */
export function cli_recv_msg_request_success(ses: CliSession): void {
  const fwd = answeredForward(ses);
  if (fwd === null) {
    return;
  }
  fwd.have_reply = true;
  if (fwd.listenport === 0) {
    // An int in C: a port of 2^31 or more reads as negative and is not taken.
    const allocport = buf_getint(ses.payload!) | 0;
    if (allocport > 0) {
      fwd.listenport = allocport;
      dropbear_log(LOG_INFO, `Allocated port ${allocport} for remote forward to ${str(fwd.connectaddr)}:${fwd.connectport}`);
    }
  }
}

/** REQUEST_FAILURE: the next -R was refused. @dropbear cli-tcpfwd.c cli_recv_msg_request_failure */
export function cli_recv_msg_request_failure(ses: CliSession): void {
  const fwd = answeredForward(ses);
  if (fwd === null) {
    return;
  }
  fwd.have_reply = true;
  fwd.refused = true;
  fwd_failed(ses, `Remote TCP forward request failed (port ${fwd.listenport} -> ${str(fwd.connectaddr)}:${fwd.connectport})`);
}

/** Request every -R once authenticated ("localhost" unless given, "" with -g). @dropbear cli-tcpfwd.c setup_remotetcp */
export function setup_remotetcp(ses: CliSession): void {
  TRACE("enter setup_remotetcp");
  for (const fwd of ses.cli_ses.cli_opts.remotefwds) {
    // Kept in the entry so the server's forwarded-tcpip opens can be matched against it.
    fwd.listenaddr = fwd_listenaddr(ses, fwd.listenaddr);
    fwd.globalreq = send_msg_global_request_remotetcp(ses, fwd.listenaddr, fwd.listenport);
  }
  TRACE("leave setup_remotetcp");
}

/**
 * The server opened forwarded-tcpip for a connection to one of our -R ports: find that -R
 * (address and port, else port alone) and connect to its target.
 * @dropbear cli-tcpfwd.c newtcpforwarded
 */
function newtcpforwarded(ses: CliSession, channel: Channel): number {
  const payload = ses.payload!;
  const origaddrBytes = buf_getstring(payload);
  const origport = buf_getint(payload);
  let err = SSH_OPEN_ADMINISTRATIVELY_PROHIBITED;
  const fwds = [...ses.cli_ses.cli_opts.remotefwds];
  // The address as the bytes we sent (send_msg_global_request_remotetcp writes it as UTF-8);
  // port alone covers "localhost" asked vs "127.0.0.1" / "::1" reported.
  const fwd =
    fwds.find((f) => origport === f.listenport && f.listenaddr !== null && origaddrBytes.equals(Buffer.from(f.listenaddr, "utf8"))) ??
    fwds.find((f) => origport === f.listenport);
  if (fwd === undefined) {
    dropbear_log(LOG_INFO, `Server sent unrequested forward from "${cleantext(origaddrBytes, false)}:${origport}"`);
  } else {
    channel.conn_pending = connect_remote(
      ses.conn_pending,
      fwd.connectaddr!,
      String(fwd.connectport),
      (result, sock, errstring) => channel_connect_done(ses, result, sock, channel, errstring),
      null,
      null,
      dropbear_prio.DROPBEAR_PRIO_NORMAL,
    );
    err = SSH_OPEN_IN_PROGRESS;
  }
  TRACE(() => `leave newtcpdirect: err ${err}`);
  return err;
}

/** The server's connections to our -R ports. @dropbear cli-tcpfwd.c cli_chan_tcpremote */
export const cli_chan_tcpremote: ChanType<CliSession> = {
  name: "forwarded-tcpip",
  inithandler: newtcpforwarded,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};
