import type { ListenerFd } from "@dropbear-ts/netio";
import type { sshsession } from "./session.js";

// listener.h: listening sockets the session loop accepts on (forwarded TCP ports, agent and X11
// sockets). The functions live in the listener package.

/** Most listeners one session keeps (Dropbear lets the table reach one more). @dropbear listener.h MAX_LISTENERS */
export const MAX_LISTENERS = 20;
/** Slots added when the table is full. @dropbear listener.h LISTENER_EXTEND_SIZE */
export const LISTENER_EXTEND_SIZE = 1;

/** TCP forwards have their own type so a cancel request can find them. @dropbear listener.h ListenerType */
export enum ListenerType {
  LISTENER_TYPE_DEFAULT,
  LISTENER_TYPE_TCPFORWARDED,
  LISTENER_TYPE_STREAMFORWARDED,
}

/** Called with a listening socket that has a connection waiting; `S` is the session type it needs. */
export type listener_acceptor<S extends sshsession = sshsession> = (ses: S, listener: Listener, sock: ListenerFd) => void;

/** Called when a listener is removed. */
export type listener_cleanup<S extends sshsession = sshsession> = (ses: S, listener: Listener) => void;

/** A set of listening sockets (IPv4 and IPv6 of one address) and what accepts on them. @dropbear listener.h Listener */
export class Listener {
  constructor(
    readonly socks: readonly ListenerFd[],
    /** The slot in ses.listeners. */
    readonly index: number,
    /** Both take the holding session's own type: call them through sesCall. */
    readonly acceptor: listener_acceptor<never>,
    readonly cleanup: listener_cleanup<never> | null,
    readonly type: ListenerType,
    readonly typedata: unknown,
  ) {}

  get nsocks(): number {
    return this.socks.length;
  }
}
