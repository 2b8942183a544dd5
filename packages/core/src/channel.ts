import type { circbuffer } from "@dropbear-ts/buffer";
import type { StreamFd, dropbear_prio, dropbear_progress_connection } from "@dropbear-ts/netio";
import type { sshsession } from "./session.js";

// channel.h: the channel struct and the per-type callbacks. The functions live in the channel
// package (common-channel.c); the types sit here so the session object can hold channels.

/** Open failure reason codes (RFC 4254 §5.1). @dropbear channel.h SSH_OPEN_ADMINISTRATIVELY_PROHIBITED */
export const SSH_OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
/** @dropbear channel.h SSH_OPEN_CONNECT_FAILED */
export const SSH_OPEN_CONNECT_FAILED = 2;
/** @dropbear channel.h SSH_OPEN_UNKNOWN_CHANNEL_TYPE */
export const SSH_OPEN_UNKNOWN_CHANNEL_TYPE = 3;
/** @dropbear channel.h SSH_OPEN_RESOURCE_SHORTAGE */
export const SSH_OPEN_RESOURCE_SHORTAGE = 4;
/** RFC 4254's words for the reason codes, as OpenSSH prints them. */
const SSH_OPEN_REASON_NAMES: Readonly<Record<number, string>> = {
  [SSH_OPEN_ADMINISTRATIVELY_PROHIBITED]: "administratively prohibited",
  [SSH_OPEN_CONNECT_FAILED]: "connect failed",
  [SSH_OPEN_UNKNOWN_CHANNEL_TYPE]: "unknown channel type",
  [SSH_OPEN_RESOURCE_SHORTAGE]: "resource shortage",
};

/** A refused open as a person reads it: the reason's name, then the peer's text ("connect failed: Connection refused"). */
export function openFailureText(reason: number, text: string): string {
  return `${SSH_OPEN_REASON_NAMES[reason] ?? `reason ${reason}`}${text === "" ? "" : `: ${text}`}`;
}

/** An inithandler's "the answer comes later" (never on the wire). @dropbear channel.h SSH_OPEN_IN_PROGRESS */
export const SSH_OPEN_IN_PROGRESS = 99;

/** Slots added to ses.channels when all are taken. @dropbear channel.h CHAN_EXTEND_SIZE */
export const CHAN_EXTEND_SIZE = 3;

/** A channel fd not set yet (a forwarded connect still in progress). @dropbear common-channel.c FD_UNINIT */
export const FD_UNINIT = -2;
/** A channel fd that was closed (or shut down in that direction). @dropbear common-channel.c FD_CLOSED */
export const FD_CLOSED = -1;

/**
 * A channel's fd field: an open Fd, or one of the two C sentinels. Comparisons between two
 * fields behave as C's int compares do: equal sentinels are equal, an Fd equals itself.
 */
export type chanfd = StreamFd | typeof FD_UNINIT | typeof FD_CLOSED;

/** Whether a channel fd field holds an open Fd (C's `fd >= 0`). */
export function chanfdIsOpen(fd: chanfd): fd is StreamFd {
  return typeof fd !== "number";
}

/**
 * What a channel type does at each point of its life. inithandler returns 0 on success, an
 * SSH_OPEN_* reason, or SSH_OPEN_IN_PROGRESS. `S` is the session type the callbacks need: a
 * server-only type takes a SvrSession. @dropbear channel.h ChanType
 */
export interface ChanType<S extends sshsession = sshsession> {
  readonly name: string;
  readonly inithandler: ((ses: S, channel: Channel) => number) | null;
  /** True once the channel may close apart from its fds (a server session's child exited). */
  readonly check_close: ((ses: S, channel: Channel) => boolean) | null;
  readonly reqhandler: ((ses: S, channel: Channel) => void) | null;
  /** Runs just before CLOSE goes out (exit-status). */
  readonly closehandler: ((ses: S, channel: Channel) => void) | null;
  readonly cleanup: ((ses: S, channel: Channel) => void) | null;
  /**
   * TS-only: the peer refused our open, with its reason code and text (printable only). Dropbear
   * reads neither; a type without this hook is dropped silently, as there.
   */
  readonly openfailed?: (ses: S, channel: Channel, reason: number, text: string) => void;
}

/**
 * TS-only: a channel a library caller opened on its own streams, not on a program's fds or an
 * accepted socket. Kept in Channel.typedata; the channel type wires the fds and calls back.
 */
export interface StreamChannel {
  /** Read and sent to the peer. */
  readonly readfd: StreamFd;
  /** Where the peer's data goes. */
  readonly writefd: StreamFd;
  /** Where the peer's stderr goes (session channels); null for none. */
  readonly errfd: StreamFd | null;
  /** Set once the peer confirmed the open. */
  opened: boolean;
  /** The peer confirmed the open. */
  onopen(): void;
  /** The channel is gone (refused, closed, or the session ended). */
  onclose(): void;
  /** Set when the peer refused the open: its reason, as "connect failed: Connection refused". */
  refused?: string;
}

/**
 * One multiplexed channel: local fds on one side, the peer's channel on the other, with a
 * window each way. Starts as newchannel leaves it. @dropbear channel.h Channel
 */
export class Channel {
  /** The remote channel number, and the two windows and packet sizes. */
  remotechan: number;
  recvwindow = 0;
  /**
   * The receive window this channel keeps granting (opts.recv_window in Dropbear, ours may be
   * less: see MAX_SESSION_RECV_WINDOW). Its write ring has this size.
   */
  maxrecvwindow = 0;
  transwindow: number;
  /** Bytes written locally since our last WINDOW_ADJUST. */
  recvdonelen = 0;
  recvmaxpacket = 0;
  transmaxpacket: number;
  /** Type-specific state (a chansess, a forward's details). */
  typedata: unknown = null;
  /** Peer data goes to writefd; readfd's data goes to the peer; errfd is stderr (see extrabuf). */
  writefd: chanfd = FD_UNINIT;
  readfd: chanfd = FD_UNINIT;
  errfd: chanfd = FD_CLOSED;
  /** readfd and writefd are one socket: half-closes are shutdowns, not closes. */
  bidir_fd = false;
  /**
   * TS-only: writefd is a dup of readfd (a pty master, ptycommand). The peer's EOF closes only
   * the dup; its CLOSE closes both, as closing C's one master fd does, which hangs up the pty.
   */
  writefd_dups_readfd = false;
  /** Peer data waiting for writefd (sized to the receive window). */
  writebuf: circbuffer | null = null;
  /** Peer stderr waiting for errfd (client sessions); null means errfd is read, not written. */
  extrabuf: circbuffer | null = null;
  /**
   * TS-only: errfd is the same pipe, socket or terminal as writefd (`2>&1`), so the peer's stderr
   * joins its data in writebuf, in the order the two came, rather than going out from extrabuf
   * ahead of data still queued for a slow reader (see cli_init_stdpipe_sess).
   */
  errfd_joins_writefd = false;
  sent_close = false;
  recv_close = false;
  recv_eof = false;
  sent_eof = false;
  /** Close read fds as soon as nothing is pending on them (a server child has exited). */
  flushing = false;
  /** The outbound connection a forwarded channel waits for. */
  conn_pending: dropbear_progress_connection | null = null;
  /** We sent CHANNEL_OPEN and wait for the answer. */
  await_open = false;
  /** Filters what readfd gives before it is sent (the client's escape characters); returns the new length. */
  read_mangler: ((channel: Channel, bytes: Buffer) => number) | null = null;
  prio: dropbear_prio;

  constructor(
    /** Our channel number: the slot in ses.channels. */
    readonly index: number,
    /** Its callbacks take the holding session's own type: call them through sesCall. */
    readonly type: ChanType<never>,
    remotechan: number,
    transwindow: number,
    transmaxpacket: number,
    prio: dropbear_prio,
  ) {
    this.remotechan = remotechan;
    this.transwindow = transwindow;
    this.transmaxpacket = transmaxpacket;
    this.prio = prio;
  }
}

