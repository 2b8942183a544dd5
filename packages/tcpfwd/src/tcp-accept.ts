import { buf_putint, buf_putstring } from "@dropbear-ts/buffer";
import { send_msg_channel_open_init } from "@dropbear-ts/channel";
import { ListenerType, type FwdListener, type Listener, type sshsession } from "@dropbear-ts/core";
import { LOG_INFO, TRACE, dropbear_assert, dropbear_log } from "@dropbear-ts/dbutil";
import { new_listener } from "@dropbear-ts/listener";
import { dropbear_listen, type ListenerFd } from "@dropbear-ts/netio";
import { DROPBEAR_MAX_SOCKS, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";

/**
 * Connections accepted per listening socket per loop turn. Dropbear takes one per select; a burst
 * of hundreds (a tunnel opened by many clients at once) then costs a turn each, and every turn
 * visits every channel. The opens this queues are small packets, a few KiB for the lot.
 */
const TCP_ACCEPTS_PER_TURN = 16;

/** The originator named for a connection whose peer address is gone (OpenSSH's port_open_helper). */
const UNKNOWN_ORIGINATOR_ADDR = "127.0.0.1";
const UNKNOWN_ORIGINATOR_PORT = 65535;

/**
 * Connections arrived on a forwarded port: give each a channel and open that at the peer,
 * naming where to connect (direct-tcpip) or which port was hit (forwarded-tcpip), and who
 * connected. @dropbear tcp-accept.c tcp_acceptor
 */
function tcp_acceptor<S extends sshsession>(ses: S, listener: Listener, sock: ListenerFd): void {
  for (let i = 0; i < TCP_ACCEPTS_PER_TURN && !sock.closed && sock.readReady(); i++) {
    tcpAcceptOne(ses, listener, sock);
  }
}

/** One accept of tcp_acceptor. */
function tcpAcceptOne<S extends sshsession>(ses: S, listener: Listener, sock: ListenerFd): void {
  TRACE("enter tcp_acceptor");
  // listen_tcpfwd registered this acceptor with the FwdListener of this same session.
  const tcpinfo = listener.typedata as FwdListener<S>;
  // Read into our own buffer: the hot path of a -L tunnel's data.
  const fd = sock.acceptOwnRead();
  if (fd === null) {
    return;
  }
  // A connection its peer reset before libuv accepted it has no address left to read (C takes
  // it from accept(), which libuv calls without asking): it may still hold bytes the peer sent,
  // which C and OpenSSH forward. OpenSSH's port_open_helper names such an originator
  // 127.0.0.1:65535 ("to appease peers that validate it").
  const { remoteAddress, remotePort } = fd.stream;
  const [ipstring, port] =
    remoteAddress !== undefined && remotePort !== undefined ? [remoteAddress, remotePort] : [UNKNOWN_ORIGINATOR_ADDR, UNKNOWN_ORIGINATOR_PORT];
  if (send_msg_channel_open_init(ses, fd, tcpinfo.chantype!) === DROPBEAR_SUCCESS) {
    let addr: string | Buffer | null;
    let sendport: number;
    if (tcpinfo.fwd_type === "direct") {
      addr = tcpinfo.sendaddr;
      sendport = tcpinfo.sendport;
    } else {
      dropbear_assert(tcpinfo.fwd_type === "forwarded", "tcpinfo->fwd_type == forwarded");
      // The client's own bytes (held one char per byte): OpenSSH's ssh matches them exactly
      // against its -R and refuses a connection whose address differs.
      addr = tcpinfo.request_listenaddr === null ? null : Buffer.from(tcpinfo.request_listenaddr, "latin1");
      sendport = tcpinfo.listenport;
    }
    buf_putstring(ses.writepayload, addr ?? "localhost");
    buf_putint(ses.writepayload, sendport);
    buf_putstring(ses.writepayload, ipstring);
    buf_putint(ses.writepayload, port);
    encrypt_packet(ses);
  } else {
    fd.close();
  }
}

/**
 * Listen on the forward's address and port (IPv4 and IPv6 where it resolves to both) and
 * register the sockets with tcp_acceptor. Binding waits as C's blocking getaddrinfo/bind do;
 * null when nothing could be bound or the listener table is full.
 * @dropbear tcp-accept.c listen_tcpfwd
 */
export async function listen_tcpfwd<S extends sshsession>(ses: S, tcpinfo: FwdListener<S>): Promise<Listener | null> {
  TRACE("enter listen_tcpfwd");
  const { socks, errstring } = await dropbear_listen(tcpinfo.listenaddr, String(tcpinfo.listenport), DROPBEAR_MAX_SOCKS, undefined, tcpinfo.interface);
  if (socks.length === 0) {
    dropbear_log(LOG_INFO, `TCP forward failed: ${errstring}`);
    TRACE("leave listen_tcpfwd: dropbear_listen failed");
    return null;
  }
  const listener = new_listener(ses, socks, ListenerType.LISTENER_TYPE_TCPFORWARDED, tcpinfo, tcp_acceptor, null);
  if (listener === null) {
    TRACE("leave listen_tcpfwd: listener failed");
    return null;
  }
  TRACE("leave listen_tcpfwd: success");
  return listener;
}
