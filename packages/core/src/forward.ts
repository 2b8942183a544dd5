import type { ChanType } from "./channel.js";
import type { sshsession } from "./session.js";

// listenaddr stays null when the command line gave none: cli-tcpfwd chooses "localhost", or ""
// with -g, when it sets the forward up, as Dropbear does.
/** One -L or -R request from the command line. @dropbear forward.h TCPFwdEntry */
export class TCPFwdEntry {
  connectaddr: string | null = null;
  connectport = 0;
  listenaddr: string | null = null;
  listenport = 0;
  /** Set once the server answered the tcpip-forward request for this entry. */
  have_reply = false;
  /** TS-only: the answer was a refusal (a library caller waits on the outcome). */
  refused = false;
  /** TS-only: the number of its tcpip-forward among our global requests (sshsession.globalreq_sent). */
  globalreq = -1;
}

/**
 * A forwarded listening port: where we listen, and what the channel opened for each accepted
 * connection carries. @dropbear forward.h FwdListener
 */
export class FwdListener<S extends sshsession = sshsession> {
  /** direct-tcpip: the host and port the peer should connect to. */
  sendaddr: string | null = null;
  sendport = 0;
  /** Where we listen: "" all interfaces, null loopback only, else a name or address. */
  listenaddr: string | null = null;
  listenport = 0;
  /**
   * The address the peer asked for (remote forwards), kept to match a cancel and named back in
   * each forwarded-tcpip: its bytes, one char each (latin1), whatever their encoding.
   */
  request_listenaddr: string | null = null;
  interface: string | null = null;
  /** Opened on the session that listens, so it takes that session's type. */
  chantype: ChanType<S> | null = null;
  /** "direct" for our -L (direct-tcpip), "forwarded" for a peer's -R (forwarded-tcpip). */
  fwd_type: "direct" | "forwarded" = "direct";
  socket_path: string | null = null;
}
