import {
  LISTENER_EXTEND_SIZE,
  Listener,
  MAX_LISTENERS,
  sesCall,
  type ListenerType,
  type listener_acceptor,
  type listener_cleanup,
  type sshsession,
} from "@dropbear-ts/core";
import { TRACE } from "@dropbear-ts/dbutil";
import type { Fd, ListenerFd } from "@dropbear-ts/netio";

/** Start the session with an empty one-slot listener table. @dropbear listener.c listeners_initialise */
export function listeners_initialise(ses: sshsession): void {
  ses.listeners = [null];
  ses.listensize = 1;
}

/** Watch every listening socket for connections. @dropbear listener.c set_listener_fds */
export function set_listener_fds(ses: sshsession, readfds: Set<Fd>): void {
  for (let i = 0; i < ses.listensize; i++) {
    const listener = ses.listeners[i];
    if (listener !== null && listener !== undefined) {
      for (const sock of listener.socks) {
        readfds.add(sock);
      }
    }
  }
}

/** Hand each listening socket with a waiting connection to its acceptor. @dropbear listener.c handle_listeners */
export function handle_listeners(ses: sshsession, readfds: ReadonlySet<Fd>): void {
  for (let i = 0; i < ses.listensize; i++) {
    const listener = ses.listeners[i];
    if (listener !== null && listener !== undefined) {
      for (const sock of listener.socks) {
        if (readfds.has(sock)) {
          sesCall(ses, listener.acceptor, listener, sock);
        }
      }
    }
  }
}

/**
 * Register listening sockets with the acceptor and cleanup for them; null (and the sockets
 * closed) when the table is full or the session is ending. @dropbear listener.c new_listener
 */
export function new_listener<S extends sshsession>(
  ses: S,
  socks: readonly ListenerFd[],
  type: ListenerType,
  typedata: unknown,
  acceptor: listener_acceptor<S>,
  cleanup: listener_cleanup<S> | null,
): Listener | null {
  if (ses.exitflag) {
    // Beyond C: the session is ending (a signal, the library server's close(), or its peer left
    // while a bind was awaited) and session_cleanup may have removed its listeners already, so
    // one made now would be left open for nobody.
    TRACE("leave newlistener: the session is ending");
    for (const sock of socks) {
      sock.close();
    }
    return null;
  }
  let i = 0;
  while (i < ses.listensize && ses.listeners[i] !== null) {
    i++;
  }
  if (i === ses.listensize) {
    // As in Dropbear the check comes before growing, so the table may reach MAX_LISTENERS + 1.
    if (ses.listensize > MAX_LISTENERS) {
      TRACE("leave newlistener: too many already");
      for (const sock of socks) {
        sock.close();
      }
      return null;
    }
    for (let j = 0; j < LISTENER_EXTEND_SIZE; j++) {
      ses.listeners.push(null);
    }
    ses.listensize += LISTENER_EXTEND_SIZE;
  }
  TRACE(() => `new listener num ${i}`);
  const newlisten = new Listener([...socks], i, acceptor, cleanup, type, typedata);
  ses.listeners[i] = newlisten;
  return newlisten;
}

/**
 * The first listener of `type` whose typedata `match`es the given one (how a cancel request
 * finds its forward). @dropbear listener.c get_listener
 */
export function get_listener(ses: sshsession, type: ListenerType, typedata: unknown, match: (a: unknown, b: unknown) => boolean): Listener | null {
  for (let i = 0; i < ses.listensize; i++) {
    const listener = ses.listeners[i];
    if (listener && listener.type === type && match(typedata, listener.typedata)) {
      return listener;
    }
  }
  return null;
}

/** Run the cleanup, close the sockets and free the slot. @dropbear listener.c remove_listener */
export function remove_listener(ses: sshsession, listener: Listener): void {
  if (listener.cleanup !== null) {
    sesCall(ses, listener.cleanup, listener);
  }
  for (const sock of listener.socks) {
    sock.close();
  }
  ses.listeners[listener.index] = null;
}

/** Remove every listener (session cleanup). @dropbear listener.c remove_all_listeners */
export function remove_all_listeners(ses: sshsession): void {
  for (let i = 0; i < ses.listensize; i++) {
    const listener = ses.listeners[i];
    if (listener) {
      remove_listener(ses, listener);
    }
  }
  ses.listeners = [];
  ses.listensize = 0;
}
