import type { Channel } from "./channel.js";
import type { ChanSess } from "./chansession.js";
import type { SvrSession } from "./session.js";

// Beyond Dropbear: what a program embedding the server (the `dropbear-ts` library) decides
// instead of the system. Dropbear asks getpwnam, crypt and authorized_keys who may log in,
// forks a shell for a session, and connects or listens for forwards as its options say; a
// library server has no system accounts and lets its caller decide each of these. The hooks
// sit where C makes those calls, so everything around them (the protocol, the failure delays,
// the signature check, the channel machinery) stays the same code. `dropbear` leaves them null.

/** An answer that may take time: the session loop waits for it before reading the next packet, as C blocks in its checks. */
export type SvrDecision<T> = T | Promise<T>;

/** Where a direct-tcpip channel is connected to. */
export interface SvrTcpTarget {
  readonly host: string;
  readonly port: number;
}

/** The embedding program's decisions for one server session (serversession.embed). */
export interface SvrEmbed {
  /** Fill ses.authstate's pw_* fields for the requested user, instead of getpwnam. */
  fill_passwd(ses: SvrSession, username: string): void;
  /** Whether the "none" method lets this user in. */
  checknone(ses: SvrSession): SvrDecision<boolean>;
  /** Whether this password is right for the user. */
  checkpassword(ses: SvrSession, password: Buffer): SvrDecision<boolean>;
  /** Whether this public key may log the user in; the server still verifies the signature itself. */
  checkpubkey(ses: SvrSession, algo: string, keyblob: Uint8Array): SvrDecision<boolean>;
  /**
   * shell, exec or subsystem on a session channel: start it on the channel's fds (they must be
   * set on return) and return true, or return false to refuse.
   */
  sessioncommand(ses: SvrSession, channel: Channel, chansess: ChanSess, kind: "shell" | "exec" | "subsystem", command: Buffer | null): boolean;
  /** The channel of a command sessioncommand started is going away (its fds are closed). */
  sessionclosed(ses: SvrSession, chansess: ChanSess): void;
  /** The client's terminal changed size (window-change), for a command sessioncommand started. */
  sessionwinchange(ses: SvrSession, chansess: ChanSess, cols: number, rows: number): void;
  /** A "signal" request for a command sessioncommand started; false refuses it. */
  sessionsignal(ses: SvrSession, chansess: ChanSess, name: string): boolean;
  /** direct-tcpip: where to connect for this request, or null to refuse it. */
  tcpdirect(ses: SvrSession, host: string, port: number, orighost: string, origport: number): SvrDecision<SvrTcpTarget | null>;
  /** tcpip-forward: whether the client may have us listen on this address and port (0: any). */
  remotetcp(ses: SvrSession, addr: string, port: number): SvrDecision<boolean>;
  /** direct-streamlocal@openssh.com: the Unix socket path to connect to, or null to refuse. */
  streamlocal(ses: SvrSession, path: string): SvrDecision<string | null>;
  /** streamlocal-forward@openssh.com: whether the client may have us listen on this Unix socket path. */
  remotestreamlocal(ses: SvrSession, path: string): SvrDecision<boolean>;
}
