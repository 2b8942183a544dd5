import * as net from "node:net";
import { ListenerType, MAX_LISTENERS, SvrSession, runopts, svr_runopts, type Listener, type sshsession } from "@dropbear-ts/core";
import { ListenerFd, type Fd } from "@dropbear-ts/netio";
import { describe, expect, it } from "vitest";
import { get_listener, handle_listeners, listeners_initialise, new_listener, remove_all_listeners, remove_listener, set_listener_fds } from "../src/index.js";

function session(): sshsession {
  const ses = new SvrSession(new runopts(), new svr_runopts());
  listeners_initialise(ses);
  return ses;
}

/** A listening Fd over a server that never listens: enough for the table's bookkeeping. */
function sock(): ListenerFd {
  return new ListenerFd(net.createServer(), 10);
}

const none = (): void => undefined;

describe("listener table", () => {
  it("grows one slot at a time and refuses past MAX_LISTENERS + 1, closing what it was given", () => {
    const ses = session();
    const made: (Listener | null)[] = [];
    for (let i = 0; i <= MAX_LISTENERS; i++) {
      made.push(new_listener(ses, [sock()], ListenerType.LISTENER_TYPE_DEFAULT, i, none, null));
    }
    expect(made.every((l) => l !== null)).toBe(true);
    expect(ses.listensize).toBe(MAX_LISTENERS + 1);
    const extra = sock();
    expect(new_listener(ses, [extra], ListenerType.LISTENER_TYPE_DEFAULT, 99, none, null)).toBeNull();
    expect(extra.closed).toBe(true);
    // A freed slot is reused.
    remove_listener(ses, made[3]!);
    const again = new_listener(ses, [sock()], ListenerType.LISTENER_TYPE_DEFAULT, 100, none, null);
    expect(again?.index).toBe(3);
    remove_all_listeners(ses);
  });

  it("finds a listener by type and match, and runs cleanup on removal", () => {
    const ses = session();
    let cleaned = 0;
    new_listener(ses, [sock()], ListenerType.LISTENER_TYPE_DEFAULT, 8080, none, null);
    const tcp = new_listener(ses, [sock()], ListenerType.LISTENER_TYPE_TCPFORWARDED, 8080, none, () => cleaned++)!;
    const same = (a: unknown, b: unknown): boolean => a === b;
    expect(get_listener(ses, ListenerType.LISTENER_TYPE_TCPFORWARDED, 8080, same)).toBe(tcp);
    expect(get_listener(ses, ListenerType.LISTENER_TYPE_TCPFORWARDED, 22, same)).toBeNull();
    remove_listener(ses, tcp);
    expect(cleaned).toBe(1);
    expect(tcp.socks.every((s) => s.closed)).toBe(true);
    expect(get_listener(ses, ListenerType.LISTENER_TYPE_TCPFORWARDED, 8080, same)).toBeNull();
  });

  it("watches every socket and hands a ready one to its acceptor", () => {
    const ses = session();
    const a = sock();
    const b = sock();
    const seen: ListenerFd[] = [];
    new_listener(ses, [a, b], ListenerType.LISTENER_TYPE_TCPFORWARDED, null, (_s, _l, fd) => seen.push(fd), null);
    const readfds = new Set<Fd>();
    set_listener_fds(ses, readfds);
    expect([...readfds]).toEqual([a, b]);
    handle_listeners(ses, new Set<Fd>([b]));
    expect(seen).toEqual([b]);
  });
});
