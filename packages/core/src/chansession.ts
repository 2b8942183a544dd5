import type { StreamFd } from "@dropbear-ts/netio";
import type { Listener } from "./listener.js";

// chansession.h: the server's per-channel session state and the child table. The functions live
// in the chansession package (svr-chansession.c); the types sit here so the session object can
// hold the child table.

/** How a session's child ended; exitpid -1 while it runs. @dropbear chansession.h exitinfo */
export class exitinfo {
  exitpid = -1;
  exitstatus = 0;
  /** The terminating signal, or -1 when the child exited normally. */
  exitsignal = 0;
  exitcore = false;
}

/** A server session channel's state: command, child, pty and forwarding. @dropbear chansession.h ChanSess */
export class ChanSess {
  /** The command to run (exec, subsystem, or a forced command); null for a login shell. Raw bytes, as C keeps them. */
  cmd: Buffer | null = null;
  /** The child's pid; 0 until one runs. */
  pid = 0;
  /** What the client asked for when -c or authorized_keys command= replaced it. */
  original_command: Buffer | null = null;
  /** The pty master and slave fds (-1 when none), and the slave's path. */
  master = -1;
  slave = -1;
  /** The master as the channel's read/write Fd once the child runs. */
  masterfd: StreamFd | null = null;
  tty: string | null = null;
  /** TERM from pty-req. */
  term: Buffer | null = null;
  /**
   * Beyond Dropbear: an embedding program's pty-req, for which no pty is made (its handlers get
   * pipes): the size the client gave, each number cut to 16 bits as a pty would keep it.
   */
  embedpty: { cols: number; rows: number } | null = null;
  exit = new exitinfo();
  /** Only while the child is being started: $SSH_CONNECTION and $SSH_CLIENT. */
  connection_string: string | null = null;
  client_string: string | null = null;
  /** Agent forwarding: the listening socket, its path and its private directory. */
  agentlistener: Listener | null = null;
  agentfile: string | null = null;
  agentdir: string | null = null;
  /** Beyond Dropbear: the locale variables accepted from "env" requests, for the child. */
  clientenv: Map<string, Buffer> | null = null;
}

/** A running child and its channel. @dropbear chansession.h ChildPid */
export interface ChildPid {
  pid: number;
  chansess: ChanSess | null;
}

/** A signal number and its SSH name. @dropbear chansession.h SigMap */
export interface SigMap {
  readonly signal: number;
  readonly name: string;
}
