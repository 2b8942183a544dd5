import { isUtf8 } from "node:buffer";
import { buf_getint, buf_getstring, buf_putbyte, buf_putint } from "@dropbear-ts/buffer";
import { channel_connect_done, remove_channel, send_msg_channel_open_failure } from "@dropbear-ts/channel";
import { svr_pubkey_allows_local_tcpfwd, svr_pubkey_allows_remote_tcpfwd, svr_pubkey_allows_tcpfwd } from "@dropbear-ts/auth";
import {
  FwdListener,
  ListenerType,
  SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
  SSH_OPEN_IN_PROGRESS,
  type ChanType,
  type Channel,
  type SvrDecision,
  type SvrSession,
} from "@dropbear-ts/core";
import { TRACE } from "@dropbear-ts/dbutil";
import { get_listener, remove_listener } from "@dropbear-ts/listener";
import { connect_remote, dropbear_prio, get_sock_port } from "@dropbear-ts/netio";
import { MAX_HOST_LEN, SSH_MSG_REQUEST_FAILURE, SSH_MSG_REQUEST_SUCCESS, DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { listen_tcpfwd } from "./tcp-accept.js";

/** Ports below this need privileges (netinet/in.h); the OS decides once we run as the user. */
const IPPORT_RESERVED = 1024;

/** "forwarded-tcpip": the server's channels for connections to a client's -R port (opened by us only). @dropbear svr-tcpfwd.c svr_chan_tcpremote */
const svr_chan_tcpremote: ChanType<SvrSession> = {
  name: "forwarded-tcpip",
  inithandler: null,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};

/** A host field as C reads it, a C string: its bytes up to the first NUL. */
function cHostBytes(field: Buffer): Buffer {
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

/**
 * A host's bytes as the text we look up and hand the embedder: C hands getaddrinfo the client's
 * bytes, and Node's lookup sends a string as UTF-8, so a UTF-8 name (a host in /etc/hosts, an
 * IDN) is decoded as such and the same bytes are looked up. Other bytes stay one char each.
 */
function hostText(bytes: Buffer): string {
  return bytes.toString(isUtf8(bytes) ? "utf8" : "latin1");
}

/** Same remote forward: same port and the same address string as requested. @dropbear svr-tcpfwd.c matchtcp */
function matchtcp(typedata1: unknown, typedata2: unknown): boolean {
  const info1 = typedata1 as FwdListener;
  const info2 = typedata2 as FwdListener;
  return info1.listenport === info2.listenport && info1.request_listenaddr === info2.request_listenaddr;
}

/** cancel-tcpip-forward: remove the listener the request names. @dropbear svr-tcpfwd.c svr_cancelremotetcp */
export function svr_cancelremotetcp(ses: SvrSession): number {
  TRACE("enter cancelremotetcp");
  const payload = ses.payload!;
  let ret = DROPBEAR_FAILURE;
  const request_addr = buf_getstring(payload);
  if (request_addr.length > MAX_HOST_LEN) {
    TRACE(() => `addr len too long: ${request_addr.length}`);
  } else {
    const tcpinfo = new FwdListener<SvrSession>();
    tcpinfo.request_listenaddr = cHostBytes(request_addr).toString("latin1");
    tcpinfo.listenport = buf_getint(payload);
    const listener = get_listener(ses, ListenerType.LISTENER_TYPE_TCPFORWARDED, tcpinfo, matchtcp);
    if (listener !== null) {
      remove_listener(ses, listener);
      ret = DROPBEAR_SUCCESS;
    }
  }
  TRACE("leave cancelremotetcp");
  return ret;
}

/**
 * The embedding program's answer to a remote forward (beyond Dropbear): a rejected answer, or
 * anything but true, refuses; "ending" when the session ended while it decided (the library
 * server's close(), or the client left), when nothing is bound and nothing answered, as
 * channelOpenDecided answers nothing then.
 */
export async function embedForwardDecision(ses: SvrSession, answer: SvrDecision<boolean>): Promise<"allowed" | "refused" | "ending"> {
  const allowed = (await Promise.resolve(answer).catch(() => false)) === true;
  if (ses.exitflag) {
    return "ending";
  }
  return allowed ? "allowed" : "refused";
}

/**
 * tcpip-forward: after the checks (address length, port range, privileged ports, the key's
 * permitlisten) listen for the client — on loopback unless -a (and not for "localhost") — and
 * answer when a reply is wanted, with the allocated port for port 0. The bind waits as C's
 * does: the caller leaves the returned promise on ses.awaitAfterPacket, which the loop awaits
 * before the next packet, so this reply still precedes every later one.
 * @dropbear svr-tcpfwd.c svr_remotetcpreq
 */
export async function svr_remotetcpreq(ses: SvrSession, wantreply: boolean): Promise<number> {
  TRACE("enter remotetcpreq");
  const payload = ses.payload!;
  let ret = DROPBEAR_FAILURE;
  let tcpinfo: FwdListener<SvrSession> | null = null;
  let port = 0;
  const request_addr = buf_getstring(payload);
  out: {
    if (request_addr.length > MAX_HOST_LEN) {
      TRACE(() => `addr len too long: ${request_addr.length}`);
      break out;
    }
    port = buf_getint(payload);
    if (port !== 0) {
      if (port < 1 || port > 65535) {
        TRACE(`invalid port: ${port}`);
        break out;
      }
      if (!ses.allowprivport && port < IPPORT_RESERVED) {
        TRACE("can't assign port < 1024 for non-root");
        break out;
      }
    }
    // A C string, for the embedder, the lookup and the cancel's match alike.
    const addrBytes = cHostBytes(request_addr);
    const addr = hostText(addrBytes);
    if (!svr_pubkey_allows_remote_tcpfwd(ses, addr, port)) {
      TRACE("remote tcp forwarding listen address not permitted");
      break out;
    }
    const embed = ses.svr_ses.embed;
    const decision = embed === null ? "allowed" : await embedForwardDecision(ses, embed.remotetcp(ses, addr, port));
    if (decision === "ending") {
      TRACE("leave remotetcpreq: the session is ending");
      return DROPBEAR_FAILURE;
    }
    if (decision === "refused") {
      TRACE("remote tcp forwarding refused by the embedding program");
      break out;
    }
    tcpinfo = new FwdListener<SvrSession>();
    tcpinfo.listenport = port;
    tcpinfo.chantype = svr_chan_tcpremote;
    tcpinfo.fwd_type = "forwarded";
    tcpinfo.interface = ses.svr_ses.svr_opts.interface;
    tcpinfo.request_listenaddr = addrBytes.toString("latin1");
    // null is loopback only: the default, and what "localhost" asks for anyway.
    tcpinfo.listenaddr = !ses.opts.listen_fwd_all || addr === "localhost" ? null : addr;
    const listener = await listen_tcpfwd(ses, tcpinfo);
    if (listener !== null) {
      ret = DROPBEAR_SUCCESS;
      tcpinfo.listenport = get_sock_port(listener.socks[0]!);
    }
  }
  // Nothing to answer once the session is ending (the bind was awaited: new_listener).
  if (wantreply && !ses.exitflag) {
    if (ret === DROPBEAR_SUCCESS) {
      buf_putbyte(ses.writepayload, SSH_MSG_REQUEST_SUCCESS);
      // The port goes back only when the client let us pick it (success means tcpinfo is set).
      if (port === 0 && tcpinfo !== null) {
        buf_putint(ses.writepayload, tcpinfo.listenport);
      }
    } else {
      buf_putbyte(ses.writepayload, SSH_MSG_REQUEST_FAILURE);
    }
    encrypt_packet(ses);
  }
  TRACE("leave remotetcpreq");
  return ret;
}

/**
 * The peer opened direct-tcpip: check that forwarding is allowed (-j, the key's
 * no-port-forwarding and permitopen) and the request is sane, then start connecting to the
 * destination; channel_connect_done answers the open. @dropbear svr-tcpfwd.c newtcpdirect
 */
function newtcpdirect(ses: SvrSession, channel: Channel): number {
  TRACE(() => `newtcpdirect channel ${channel.index}`);
  const payload = ses.payload!;
  let err = SSH_OPEN_ADMINISTRATIVELY_PROHIBITED;
  out: {
    if (ses.svr_ses.svr_opts.nolocaltcp || !svr_pubkey_allows_tcpfwd(ses)) {
      TRACE("leave newtcpdirect: local tcp forwarding disabled");
      break out;
    }
    const desthost = buf_getstring(payload);
    if (desthost.length > MAX_HOST_LEN) {
      TRACE("leave newtcpdirect: desthost too long");
      break out;
    }
    const destport = buf_getint(payload);
    const orighost = buf_getstring(payload);
    if (orighost.length > MAX_HOST_LEN) {
      TRACE("leave newtcpdirect: orighost too long");
      break out;
    }
    const origport = buf_getint(payload);
    if (origport > 65535 || destport > 65535) {
      TRACE("leave newtcpdirect: port > 65535");
      break out;
    }
    // A C string, for permitopen= (its bytes), the embedder and the lookup alike.
    const hostBytes = cHostBytes(desthost);
    const host = hostText(hostBytes);
    if (!svr_pubkey_allows_local_tcpfwd(ses, hostBytes, destport)) {
      TRACE("leave newtcpdirect: local tcp forwarding not permitted to requested destination");
      break out;
    }
    const embed = ses.svr_ses.embed;
    if (embed !== null) {
      // The embedding program decides where this goes, if anywhere (beyond Dropbear).
      const target = embed.tcpdirect(ses, host, destport, orighost.toString("latin1"), origport);
      if (target === null) {
        TRACE("leave newtcpdirect: refused by the embedding program");
        break out;
      }
      channelOpenDecided(ses, channel, target, (t) => tcpdirectConnect(ses, channel, t.host, t.port));
      err = SSH_OPEN_IN_PROGRESS;
      break out;
    }
    tcpdirectConnect(ses, channel, host, destport);
    err = SSH_OPEN_IN_PROGRESS;
  }
  TRACE(() => `leave newtcpdirect: err ${err}`);
  return err;
}

/** Start connecting a direct-tcpip channel; channel_connect_done answers the open. Part of newtcpdirect. */
function tcpdirectConnect(ses: SvrSession, channel: Channel, host: string, port: number): void {
  channel.conn_pending = connect_remote(
    ses.conn_pending,
    host,
    String(port),
    (result, sock, errstring) => channel_connect_done(ses, result, sock, channel, errstring),
    null,
    null,
    dropbear_prio.DROPBEAR_PRIO_NORMAL,
  );
}

/**
 * Go on with an embedding program's answer to a channel open (direct-tcpip, direct-streamlocal)
 * that was not refused at once: connect now, or once a promised answer comes — then a refusal
 * is sent as "administratively prohibited", nothing is done once the session or the channel is
 * gone, and the loop is woken to go on.
 */
export function channelOpenDecided<T>(ses: SvrSession, channel: Channel, answer: T | Promise<T | null>, connect: (target: T) => void): void {
  if (!(answer instanceof Promise)) {
    connect(answer);
    return;
  }
  const decided = (target: T | null): void => {
    if (ses.exitflag || ses.sock_in === null || ses.channels[channel.index] !== channel) {
      return;
    }
    if (target === null) {
      send_msg_channel_open_failure(ses, channel.remotechan, SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, "", "");
      remove_channel(ses, channel);
    } else {
      connect(target);
    }
    ses.signal_pipe?.raise();
  };
  answer.then(decided, () => decided(null));
}

/** "direct-tcpip" as the server accepts it (the client's -L). @dropbear svr-tcpfwd.c svr_chan_tcpdirect */
export const svr_chan_tcpdirect: ChanType<SvrSession> = {
  name: "direct-tcpip",
  inithandler: newtcpdirect,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};
