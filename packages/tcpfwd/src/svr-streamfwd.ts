import { isUtf8 } from "node:buffer";
import { lstatSync, statSync, unlinkSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { dirname } from "node:path";
import { buf_getstring, buf_putstring } from "@dropbear-ts/buffer";
import { channel_connect_done, send_msg_channel_open_init } from "@dropbear-ts/channel";
import { svr_pubkey_allows_tcpfwd, svr_pubkey_has_forced_command } from "@dropbear-ts/auth";
import {
  FwdListener,
  ListenerType,
  SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
  SSH_OPEN_IN_PROGRESS,
  type ChanType,
  type Channel,
  type Listener,
  type SvrSession,
} from "@dropbear-ts/core";
import { DEBUG1, LOG_INFO, TRACE, dropbear_log, strerror_code } from "@dropbear-ts/dbutil";
import { get_listener, new_listener, remove_listener } from "@dropbear-ts/listener";
import { ListenerFd, StreamFd, connect_streamlocal, dropbear_prio, SOCKET_HIGH_WATER_MARK } from "@dropbear-ts/netio";
import { DROPBEAR_LISTEN_BACKLOG, MAX_HOST_LEN, DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { encrypt_packet } from "@dropbear-ts/packet";
import { channelOpenDecided, embedForwardDecision } from "./svr-tcpfwd.js";

// Unix-socket forwarding on the server (svr-streamfwd.c): the client's `ssh -L port:/path`
// (direct-streamlocal@openssh.com) and `ssh -R /path:host:port` (streamlocal-forward@openssh.com
// and its cancel). The connection process runs as the user by then (svr_switch_user), so the
// socket is created, reached and removed with the user's rights.

/** sizeof(struct sockaddr_un.sun_path) on Linux: the path and its NUL. */
const SUN_PATH_LEN = 108;

/** "forwarded-streamlocal@openssh.com": the channel for each connection to a -R socket (opened by us only). @dropbear svr-streamfwd.c svr_chan_streamlocalremote */
const svr_chan_streamlocalremote: ChanType<SvrSession> = {
  name: "forwarded-streamlocal@openssh.com",
  inithandler: null,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};

/** The same socket path, for a cancel. @dropbear svr-streamfwd.c matchstreamlocal */
function matchstreamlocal(typedata1: unknown, typedata2: unknown): boolean {
  const info1 = typedata1 as FwdListener;
  const info2 = typedata2 as FwdListener;
  if (info1.socket_path === null || info2.socket_path === null) {
    return false;
  }
  return info1.chantype === info2.chantype && info1.socket_path === info2.socket_path;
}

/**
 * A path from the request: at most MAX_HOST_LEN bytes and no NUL inside (C's strlen check);
 * null when refused.
 */
function getStreamPath(ses: SvrSession): string | null {
  const raw = buf_getstring(ses.payload!);
  if (raw.length > MAX_HOST_LEN) {
    TRACE(() => `path len too long: ${raw.length}`);
    return null;
  }
  if (raw.includes(0)) {
    TRACE("path has nul byte");
    return null;
  }
  return socketPath(raw);
}

/**
 * A socket path as the client sent its bytes, or null. C passes the bytes on; node:net takes a
 * path only as a string, which it encodes as UTF-8, so a path that is not UTF-8 is refused
 * rather than bound or connected under other bytes. An empty one is refused too: C binds an
 * unnamed socket nobody can reach (node:net refuses it with its own message).
 */
function socketPath(raw: Buffer): string | null {
  if (raw.length === 0) {
    TRACE("empty path");
    return null;
  }
  if (!isUtf8(raw)) {
    TRACE("path is not UTF-8");
    return null;
  }
  return raw.toString("utf8");
}

/**
 * cancel-streamlocal-forward@openssh.com: remove the listener on that path. (Dropbear 2026.94
 * looks the listener up under CHANNEL_ID_STREAMLOCALFORWARDED while it was registered as
 * LISTENER_TYPE_STREAMFORWARDED, so its cancel never finds one; we look under the type it was
 * registered with — docs/deviations.md.)
 * @dropbear svr-streamfwd.c svr_cancelremotestreamlocal
 */
export function svr_cancelremotestreamlocal(ses: SvrSession): number {
  TRACE("enter cancelremotestreamlocal");
  let ret = DROPBEAR_FAILURE;
  const socket_path = getStreamPath(ses);
  if (socket_path !== null) {
    const tcpinfo = new FwdListener<SvrSession>();
    tcpinfo.socket_path = socket_path;
    tcpinfo.chantype = svr_chan_streamlocalremote;
    const listener = get_listener(ses, ListenerType.LISTENER_TYPE_STREAMFORWARDED, tcpinfo, matchstreamlocal);
    if (listener !== null) {
      remove_listener(ses, listener);
      ret = DROPBEAR_SUCCESS;
    }
  }
  TRACE("leave cancelremotestreamlocal");
  return ret;
}

/** Remove the socket file; one already gone is fine, other failures are only logged. @dropbear svr-streamfwd.c unlink_streamsocket */
function unlink_streamsocket(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code !== "ENOENT") {
      DEBUG1(() => `Failed removing unix socket ${path}: ${strerror_code(code, String(e))}`);
    }
  }
}

/** The listener is going (cancel or session end): remove its socket file. @dropbear svr-streamfwd.c cleanup_streamlocal */
function cleanup_streamlocal(_ses: SvrSession, listener: Listener): void {
  const tcpinfo = listener.typedata as FwdListener | null;
  if (tcpinfo?.socket_path) {
    unlink_streamsocket(tcpinfo.socket_path);
  }
}

/**
 * A connection on a -R socket: open forwarded-streamlocal@openssh.com at the client, naming the
 * path it asked for. @dropbear svr-streamfwd.c streamlocal_acceptor
 */
function streamlocal_acceptor(ses: SvrSession, listener: Listener, sock: ListenerFd): void {
  const tcpinfo = listener.typedata as FwdListener;
  const s = sock.accept();
  if (s === null) {
    return;
  }
  const fd = new StreamFd(s);
  if (send_msg_channel_open_init(ses, fd, tcpinfo.chantype!) === DROPBEAR_SUCCESS) {
    buf_putstring(ses.writepayload, tcpinfo.request_listenaddr ?? "");
    // reserved
    buf_putstring(ses.writepayload, "");
    encrypt_packet(ses);
  } else {
    fd.close();
  }
}

/**
 * bind() of a unix socket under umask 0177 (the socket 0600, the user's). Node binds a path
 * synchronously inside listen() — the umask is only ours for that call — and reports the
 * outcome on the next tick.
 */
function bindStreamSocket(path: string): Promise<Server> {
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, highWaterMark: SOCKET_HIGH_WATER_MARK });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    const old_umask = process.umask(0o177);
    try {
      server.listen({ path, backlog: DROPBEAR_LISTEN_BACKLOG }, () => {
        server.removeListener("error", reject);
        resolve(server);
      });
    } finally {
      process.umask(old_umask);
    }
  });
}

/**
 * The errno bind() gave. libuv reports ENOENT (a directory on the path is missing) as EACCES,
 * as Windows would; a missing directory is told apart by looking for it.
 */
function bindErrorCode(e: NodeJS.ErrnoException, path: string): string {
  if (e.code === "EACCES") {
    try {
      statSync(dirname(path));
    } catch (se) {
      const code = (se as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        return code;
      }
    }
  }
  return e.code ?? "";
}

/**
 * Whether `path` itself (not what a symlink there names) is a socket nobody listens on: a
 * connect is refused. A live one (another session's forward, the user's own server) is kept.
 */
async function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) {
      return false;
    }
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const probe = connect({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(false);
    });
    probe.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

/**
 * Listen on tcpinfo.socket_path (an old socket file there is removed first) and register it
 * with streamlocal_acceptor; null, logged, when the path is too long or cannot be bound.
 * @dropbear svr-streamfwd.c listen_streamlocal
 */
export async function listen_streamlocal(ses: SvrSession, tcpinfo: FwdListener<SvrSession>): Promise<Listener | null> {
  TRACE("enter listen_streamlocal");
  const path = tcpinfo.socket_path;
  if (path === null) {
    TRACE("leave listen_streamlocal: no socket path");
    return null;
  }
  if (Buffer.byteLength(path) >= SUN_PATH_LEN) {
    dropbear_log(LOG_INFO, "Streamlocal forward failed: socket path too long");
    TRACE("leave listen_streamlocal: path too long");
    return null;
  }
  // Beyond C: a path this session already listens on is refused, as a second bind of a TCP
  // port is; C would unlink the first's socket and leave that listener unreachable.
  if (get_listener(ses, ListenerType.LISTENER_TYPE_STREAMFORWARDED, tcpinfo, matchstreamlocal) !== null) {
    dropbear_log(LOG_INFO, `Streamlocal forward failed: bind() failed: ${strerror_code("EADDRINUSE")}`);
    TRACE("leave listen_streamlocal: already forwarded");
    return null;
  }
  // Beyond C, which unlinks whatever is there: only an old socket nobody listens on goes, as
  // OpenSSH's sshd (StreamLocalBindUnlink). A regular file, a symlink or a live socket at the
  // path (which a mistyped or hostile request would have deleted, or another session's forward
  // whose end would then remove ours) makes the bind fail with "Address in use" instead.
  if (await isStaleSocket(path)) {
    unlink_streamsocket(path);
  }
  let server: Server;
  try {
    server = await bindStreamSocket(path);
  } catch (e) {
    const ne = e as NodeJS.ErrnoException;
    const code = bindErrorCode(ne, path);
    dropbear_log(LOG_INFO, `Streamlocal forward failed: bind() failed: ${strerror_code(code, ne.message)}`);
    TRACE("leave listen_streamlocal: bind() failed");
    return null;
  }
  const listener = new_listener(ses, [new ListenerFd(server, DROPBEAR_LISTEN_BACKLOG)], ListenerType.LISTENER_TYPE_STREAMFORWARDED, tcpinfo, streamlocal_acceptor, cleanup_streamlocal);
  if (listener === null) {
    server.close();
    unlink_streamsocket(path);
    TRACE("leave listen_streamlocal: listener failed");
    return null;
  }
  TRACE("leave listen_streamlocal: success");
  return listener;
}

/**
 * streamlocal-forward@openssh.com: unless a forced command is in force (a socket in the right
 * place could subvert it) or remote forwarding is off, listen on the path the client names.
 * Resolves to DROPBEAR_SUCCESS or DROPBEAR_FAILURE once the bind is done (C's bind blocks).
 * @dropbear svr-streamfwd.c svr_remotestreamlocalreq
 */
export async function svr_remotestreamlocalreq(ses: SvrSession): Promise<number> {
  TRACE("enter remotestreamlocalreq");
  const svr_opts = ses.svr_ses.svr_opts;
  let ret = DROPBEAR_FAILURE;
  out: {
    if (svr_opts.forced_command !== null || svr_pubkey_has_forced_command(ses)) {
      TRACE("leave newstreamlocal: no unix forwarding for forced command");
      break out;
    }
    if (svr_opts.noremotefwd || !svr_pubkey_allows_tcpfwd(ses)) {
      TRACE("leave remotestreamlocalreq: remote forwarding disabled");
      break out;
    }
    const request_path = getStreamPath(ses);
    if (request_path === null) {
      break out;
    }
    const embed = ses.svr_ses.embed;
    const decision = embed === null ? "allowed" : await embedForwardDecision(ses, embed.remotestreamlocal(ses, request_path));
    if (decision !== "allowed") {
      // Nothing is answered either when the session is ending: the caller looks at exitflag.
      TRACE(`leave remotestreamlocalreq: ${decision === "ending" ? "the session is ending" : "refused by the embedding program"}`);
      break out;
    }
    const tcpinfo = new FwdListener<SvrSession>();
    tcpinfo.chantype = svr_chan_streamlocalremote;
    tcpinfo.fwd_type = "forwarded";
    tcpinfo.socket_path = request_path;
    tcpinfo.request_listenaddr = request_path;
    const listener = await listen_streamlocal(ses, tcpinfo);
    ret = listener !== null ? DROPBEAR_SUCCESS : DROPBEAR_FAILURE;
  }
  TRACE("leave remotestreamlocalreq");
  return ret;
}

/**
 * The client opened direct-streamlocal@openssh.com: unless forbidden (forced command, -j, the
 * key's no-port-forwarding), start connecting to the socket path; channel_connect_done answers.
 * @dropbear svr-streamfwd.c newstreamlocal
 */
function newstreamlocal(ses: SvrSession, channel: Channel): number {
  TRACE(() => `streamlocal channel ${channel.index}`);
  const svr_opts = ses.svr_ses.svr_opts;
  let err = SSH_OPEN_ADMINISTRATIVELY_PROHIBITED;
  out: {
    if (svr_opts.forced_command !== null || svr_pubkey_has_forced_command(ses)) {
      TRACE("leave newstreamlocal: no unix forwarding for forced command");
      break out;
    }
    if (svr_opts.nolocaltcp || !svr_pubkey_allows_tcpfwd(ses)) {
      TRACE("leave newstreamlocal: local unix forwarding disabled");
      break out;
    }
    const destsocket = buf_getstring(ses.payload!);
    if (destsocket.length > MAX_HOST_LEN) {
      TRACE("leave streamlocal: destsocket too long");
      break out;
    }
    // C copies the path into sun_path with strlcpy: it ends at a NUL.
    const nul = destsocket.indexOf(0);
    const path = socketPath(nul >= 0 ? destsocket.subarray(0, nul) : destsocket);
    if (path === null) {
      break out;
    }
    const connect = (p: string): void => {
      channel.conn_pending = connect_streamlocal(
        ses.conn_pending,
        p,
        (result, sock, errstring) => channel_connect_done(ses, result, sock, channel, errstring),
        dropbear_prio.DROPBEAR_PRIO_NORMAL,
      );
    };
    const embed = ses.svr_ses.embed;
    if (embed === null) {
      connect(path);
    } else {
      // The embedding program decides which socket, if any (beyond Dropbear).
      const target = embed.streamlocal(ses, path);
      if (target === null) {
        TRACE("leave newstreamlocal: refused by the embedding program");
        break out;
      }
      channelOpenDecided(ses, channel, target, connect);
    }
    err = SSH_OPEN_IN_PROGRESS;
  }
  TRACE(() => `leave streamlocal: err ${err}`);
  return err;
}

/** "direct-streamlocal@openssh.com" as the server accepts it (`ssh -L port:/path`). @dropbear svr-streamfwd.c svr_chan_streamlocal */
export const svr_chan_streamlocal: ChanType<SvrSession> = {
  name: "direct-streamlocal@openssh.com",
  inithandler: newstreamlocal,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};
