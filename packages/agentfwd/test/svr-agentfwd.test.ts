import { existsSync, readdirSync, statSync } from "node:fs";
import { connect } from "node:net";
import { dirname } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buf_getbyte, buf_getint, buf_getstring, buf_new, buf_putbytes, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import { chaninitialise } from "@dropbear-ts/channel";
import { ChanSess, PubKeyOptions, type SvrSession } from "@dropbear-ts/core";
import type { Fd } from "@dropbear-ts/netio";
import { handle_listeners, listeners_initialise, remove_all_listeners, set_listener_fds } from "@dropbear-ts/listener";
import { SSH_MSG_CHANNEL_OPEN, DROPBEAR_FAILURE, DROPBEAR_SUCCESS } from "@dropbear-ts/options";
import { newSvrSession, sleep, takePayloads } from "../../auth/test/harness.js";
import { AGENTDIRPREFIX, svr_agentcleanup, svr_agentreq, svr_agentset } from "../src/index.js";

// svr-agentfwd.c: the forwarded socket, its private directory, and the channel each connection
// to it opens towards the client.

const made: { ses: SvrSession; cs: ChanSess }[] = [];
afterEach(() => {
  for (const { ses, cs } of made.splice(0)) {
    svr_agentcleanup(ses, cs);
    remove_all_listeners(ses);
  }
});

function session(): { ses: SvrSession; cs: ChanSess } {
  const ses = newSvrSession();
  listeners_initialise(ses);
  chaninitialise(ses, []);
  const cs = new ChanSess();
  made.push({ ses, cs });
  return { ses, cs };
}

function sockPath(ses: SvrSession, cs: ChanSess): string {
  let path = "";
  svr_agentset(ses, cs, (k, v) => {
    expect(k).toBe("SSH_AUTH_SOCK");
    path = v;
  });
  return path;
}

function sent(ses: SvrSession): { type: number; b: buffer }[] {
  return takePayloads(ses).map((p) => {
    const b = buf_new(p.length);
    buf_putbytes(b, p);
    buf_setpos(b, 0);
    return { type: buf_getbyte(b), b };
  });
}

describe("svr_agentreq", () => {
  it("listens on /tmp/dropbear-XXXXXXXX/auth-XXXXXXXX-N in a 0700 directory of our own", () => {
    const { ses, cs } = session();
    expect(svr_agentreq(ses, cs)).toBe(DROPBEAR_SUCCESS);
    expect(cs.agentlistener).not.toBeNull();
    expect(cs.agentdir).toMatch(new RegExp(`^${AGENTDIRPREFIX}[0-9a-f]{8}$`));
    expect(cs.agentfile).toMatch(/^auth-[0-9a-f]{8}-\d+$/);
    const path = sockPath(ses, cs);
    expect(path).toBe(`${cs.agentdir}/${cs.agentfile}`);
    const st = statSync(dirname(path));
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(process.getuid!());
    expect(statSync(path).isSocket()).toBe(true);
  });

  it("refuses a second request on the same channel, and when authorized_keys says no-agent-forwarding", () => {
    const { ses, cs } = session();
    expect(svr_agentreq(ses, cs)).toBe(DROPBEAR_SUCCESS);
    const dir = cs.agentdir;
    expect(svr_agentreq(ses, cs)).toBe(DROPBEAR_FAILURE);
    // The first one is left as it was.
    expect(cs.agentdir).toBe(dir);
    expect(existsSync(sockPath(ses, cs))).toBe(true);

    const other = session();
    const o = new PubKeyOptions();
    o.no_agent_forwarding_flag = true;
    other.ses.authstate.pubkey_options = o;
    expect(svr_agentreq(other.ses, other.cs)).toBe(DROPBEAR_FAILURE);
    expect(other.cs.agentlistener).toBeNull();
    expect(other.cs.agentdir).toBeNull();
  });

  it("sets no SSH_AUTH_SOCK without a listener", () => {
    const { ses, cs } = session();
    const vars: string[] = [];
    svr_agentset(ses, cs, (k) => vars.push(k));
    expect(vars).toEqual([]);
  });
});

describe("agentaccept", () => {
  it("opens an auth-agent@openssh.com channel to the client for each connection", async () => {
    const { ses, cs } = session();
    expect(svr_agentreq(ses, cs)).toBe(DROPBEAR_SUCCESS);
    const path = sockPath(ses, cs);
    const clients = [connect(path), connect(path)];
    try {
      let opens = 0;
      const deadline = Date.now() + 5000;
      while (opens < 2 && Date.now() < deadline) {
        const readfds = new Set<Fd>();
        set_listener_fds(ses, readfds);
        const ready = new Set([...readfds].filter((fd) => fd.readReady()));
        handle_listeners(ses, ready);
        for (const { type, b } of sent(ses)) {
          expect(type).toBe(SSH_MSG_CHANNEL_OPEN);
          expect(buf_getstring(b).toString()).toBe("auth-agent@openssh.com");
          expect(buf_getint(b)).toBe(opens); // our channel number
          opens++;
        }
        await sleep(10);
      }
      expect(opens).toBe(2);
      expect(ses.channels.filter((c) => c !== null && c.type.name === "auth-agent@openssh.com").length).toBe(2);
    } finally {
      for (const c of clients) c.destroy();
    }
  });
});

describe("svr_agentcleanup", () => {
  it("closes the listener and removes the socket and its directory; a second call is harmless", () => {
    const { ses, cs } = session();
    expect(svr_agentreq(ses, cs)).toBe(DROPBEAR_SUCCESS);
    const path = sockPath(ses, cs);
    const dir = cs.agentdir!;
    const listener = cs.agentlistener!;
    svr_agentcleanup(ses, cs);
    expect(cs.agentlistener).toBeNull();
    expect(cs.agentdir).toBeNull();
    expect(cs.agentfile).toBeNull();
    expect(existsSync(path)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(listener.socks.length).toBeGreaterThan(0);
    expect(listener.socks.every((s) => s.closed)).toBe(true);
    expect(ses.listeners.includes(listener)).toBe(false);
    svr_agentcleanup(ses, cs);
  });

  it("leaves no dropbear- directory behind after many request/cleanup rounds", () => {
    const before = new Set(readdirSync("/tmp").filter((n) => n.startsWith("dropbear-")));
    for (let i = 0; i < 30; i++) {
      const { ses, cs } = session();
      expect(svr_agentreq(ses, cs)).toBe(DROPBEAR_SUCCESS);
      svr_agentcleanup(ses, cs);
    }
    const after = readdirSync("/tmp").filter((n) => n.startsWith("dropbear-") && !before.has(n));
    expect(after).toEqual([]);
  });
});
