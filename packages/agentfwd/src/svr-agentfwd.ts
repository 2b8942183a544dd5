import { randomBytes } from "node:crypto";
import { mkdirSync, rmdirSync, unlinkSync } from "node:fs";
import { createServer } from "node:net";
import { svr_pubkey_allows_agentfwd } from "@dropbear-ts/auth";
import { send_msg_channel_open_init } from "@dropbear-ts/channel";
import { ListenerType, type ChanSess, type ChanType, type Listener, type SvrSession } from "@dropbear-ts/core";
import { TRACE } from "@dropbear-ts/dbutil";
import { new_listener, remove_listener } from "@dropbear-ts/listener";
import { ListenerFd, SOCKET_HIGH_WATER_MARK, StreamFd } from "@dropbear-ts/netio";
import { encrypt_packet } from "@dropbear-ts/packet";
import { DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";

// svr-agentfwd.c: the server's half of agent forwarding. "auth-agent-req@openssh.com" on a
// session channel makes a unix socket in a fresh private directory; the child finds it through
// SSH_AUTH_SOCK, and each connection to it becomes an "auth-agent@openssh.com" channel to the
// client, whose agent answers. The connection process already runs as the authenticated user
// (Dropbear's DROPBEAR_SVR_DROP_PRIVS case), so the directory and socket are the user's and no
// euid juggling is needed to make or remove them.

/** Where the private directories go: "/tmp/dropbear-" and 8 hex digits. @dropbear svr-agentfwd.c AGENTDIRPREFIX */
export const AGENTDIRPREFIX = "/tmp/dropbear-";

/** The listen backlog C passes to listen(). */
const AGENT_BACKLOG = 20;

/** Longest directory or file name C's buffers hold: (sizeof(sun_path) - 1) / 2 in C's integer division, less the NUL. */
const AGENT_NAME_MAX = Math.floor((108 - 1) / 2) - 1;

/** Eight random hex digits, as C prints a random uint32 with %.8x. */
function randomHex8(): string {
  return randomBytes(4).toString("hex");
}

/**
 * Set up forwarding for this channel: a listening socket registered with the session loop.
 * Refused when the authorized_keys entry says no-agent-forwarding or the channel already has
 * one. @dropbear svr-agentfwd.c svr_agentreq
 */
export function svr_agentreq(ses: SvrSession, chansess: ChanSess): number {
  if (!svr_pubkey_allows_agentfwd(ses)) {
    return DROPBEAR_FAILURE;
  }
  if (chansess.agentlistener !== null) {
    return DROPBEAR_FAILURE;
  }
  // pauseOnConnect: accepted connections wait for the loop, as with accept(2).
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, highWaterMark: SOCKET_HIGH_WATER_MARK });
  // ListenerFd first: it takes the server's error events, so a late one never goes unhandled.
  const fd = new ListenerFd(server, AGENT_BACKLOG);
  if (bindagent(fd, chansess) === DROPBEAR_FAILURE) {
    fd.close();
    svr_agentcleanup(ses, chansess);
    return DROPBEAR_FAILURE;
  }
  chansess.agentlistener = new_listener(ses, [fd], ListenerType.LISTENER_TYPE_DEFAULT, chansess, agentaccept, null);
  if (chansess.agentlistener === null) {
    // new_listener closed the socket already.
    svr_agentcleanup(ses, chansess);
    return DROPBEAR_FAILURE;
  }
  return DROPBEAR_SUCCESS;
}

/**
 * A process connected to the forwarded socket: open an agent channel to the client for it.
 * @dropbear svr-agentfwd.c agentaccept
 */
function agentaccept(ses: SvrSession, _listener: Listener, sock: ListenerFd): void {
  const s = sock.accept();
  if (s === null) {
    TRACE("accept failed");
    return;
  }
  const fd = new StreamFd(s);
  if (send_msg_channel_open_agent(ses, fd) !== DROPBEAR_SUCCESS) {
    fd.close();
  }
}

/**
 * Give the child SSH_AUTH_SOCK when this channel forwards an agent; called while the child's
 * environment is built. @dropbear svr-agentfwd.c svr_agentset
 */
export function svr_agentset(_ses: SvrSession, chansess: ChanSess, addnewvar: (param: string, value: string) => void): void {
  if (chansess.agentlistener === null) {
    return;
  }
  addnewvar("SSH_AUTH_SOCK", `${chansess.agentdir}/${chansess.agentfile}`);
}

/**
 * Stop forwarding: close the listener, then remove the socket file and its directory.
 * Safe to call more than once. @dropbear svr-agentfwd.c svr_agentcleanup
 */
export function svr_agentcleanup(ses: SvrSession, chansess: ChanSess): void {
  if (chansess.agentlistener !== null) {
    remove_listener(ses, chansess.agentlistener);
    chansess.agentlistener = null;
  }
  if (chansess.agentfile !== null && chansess.agentdir !== null) {
    // libuv unlinks a socket it bound when closing it; this covers a socket never closed by it.
    try {
      unlinkSync(`${chansess.agentdir}/${chansess.agentfile}`);
    } catch {
      // Already gone.
    }
    try {
      rmdirSync(chansess.agentdir);
    } catch (e) {
      // Something else in it, or already gone: as C's unchecked rmdir, leave it.
      TRACE(() => `rmdir ${chansess.agentdir}: ${(e as Error).message}`);
    }
    chansess.agentfile = null;
    chansess.agentdir = null;
  }
}

/** Agent channels we open to the client carry no per-type behaviour. @dropbear svr-agentfwd.c chan_svr_agent */
const chan_svr_agent: ChanType<SvrSession> = {
  name: "auth-agent@openssh.com",
  inithandler: null,
  check_close: null,
  reqhandler: null,
  closehandler: null,
  cleanup: null,
};

/** Send the CHANNEL_OPEN for an accepted agent connection. @dropbear svr-agentfwd.c send_msg_channel_open_agent */
function send_msg_channel_open_agent(ses: SvrSession, fd: StreamFd): number {
  if (send_msg_channel_open_init(ses, fd, chan_svr_agent) === DROPBEAR_SUCCESS) {
    encrypt_packet(ses);
    return DROPBEAR_SUCCESS;
  }
  return DROPBEAR_FAILURE;
}

/**
 * Make a fresh mode-0700 directory under AGENTDIRPREFIX (a few random names tried, in case
 * one exists) and listen there on "auth-<random>-<fd>". Records both names on success.
 * @dropbear svr-agentfwd.c bindagent
 */
function bindagent(fd: ListenerFd, chansess: ChanSess): number {
  let path: string | null = null;
  for (let i = 0; i < 20; i++) {
    const candidate = `${AGENTDIRPREFIX}${randomHex8()}`.slice(0, AGENT_NAME_MAX);
    try {
      mkdirSync(candidate, { mode: 0o700 });
      path = candidate;
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        TRACE(() => `mkdir ${candidate}: ${(e as Error).message}`);
        break;
      }
    }
  }
  if (path === null) {
    return DROPBEAR_FAILURE;
  }
  // The random part keeps a later process that reuses our fd number from guessing the name.
  const sockfile = `auth-${randomHex8()}-${fd.fd}`.slice(0, AGENT_NAME_MAX);
  // A unix-socket listen binds before it returns: listening is known at once, as after bind().
  fd.server.listen({ path: `${path}/${sockfile}`, backlog: AGENT_BACKLOG });
  if (!fd.server.listening) {
    try {
      rmdirSync(path);
    } catch {
      // Nothing we can do about a directory we cannot remove.
    }
    return DROPBEAR_FAILURE;
  }
  chansess.agentdir = path;
  chansess.agentfile = sockfile;
  return DROPBEAR_SUCCESS;
}
