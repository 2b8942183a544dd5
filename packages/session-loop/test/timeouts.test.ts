import { CliSession, SvrSession, cli_runopts, runopts, svr_runopts, type sshsession } from "@dropbear-ts/core";
import { DropbearExit, gettime_wrapper, monotonic_now } from "@dropbear-ts/dbutil";
import { AUTH_TIMEOUT, KEX_REKEY_TIMEOUT } from "@dropbear-ts/options";
import { describe, expect, it } from "vitest";
import { checktimeouts, select_timeout } from "../src/index.js";

// The 300 s auth timeout has no run-time knob in Dropbear (AUTH_TIMEOUT is compiled in), so the
// end-to-end tests cannot wait for it; its arithmetic is checked here on a session whose clock
// stamps are set back.

function serverSession(): sshsession {
  return stamped(new SvrSession(new runopts(), new svr_runopts()));
}

function stamped(ses: sshsession): sshsession {
  const now = monotonic_now();
  ses.connect_time = now;
  ses.kexstate.lastkextime = now;
  return ses;
}

describe("auth timeout", () => {
  it("select waits no longer than the time left before AUTH_TIMEOUT", () => {
    const ses = serverSession();
    expect(AUTH_TIMEOUT).toBe(300);
    expect(select_timeout(ses)).toBeGreaterThanOrEqual(AUTH_TIMEOUT - 1);
    expect(select_timeout(ses)).toBeLessThanOrEqual(AUTH_TIMEOUT);
    ses.connect_time -= 290;
    expect(select_timeout(ses)).toBeGreaterThanOrEqual(9);
    expect(select_timeout(ses)).toBeLessThanOrEqual(10);
    ses.connect_time -= 20;
    expect(select_timeout(ses)).toBe(0);
  });

  it("checktimeouts ends an unauthenticated session at AUTH_TIMEOUT, not before", () => {
    const ses = serverSession();
    ses.connect_time -= AUTH_TIMEOUT - 2;
    expect(() => checktimeouts(ses)).not.toThrow();
    ses.connect_time -= 2;
    expect(() => checktimeouts(ses)).toThrow(new DropbearExit(0, "Timeout before auth", "ETIMEOUT"));
  });

  it("after auth the auth timeout no longer counts", () => {
    const ses = serverSession();
    ses.authstate.authdone = true;
    ses.connect_time -= AUTH_TIMEOUT * 2;
    expect(() => checktimeouts(ses)).not.toThrow();
    expect(select_timeout(ses)).toBeGreaterThan(AUTH_TIMEOUT);
    expect(select_timeout(ses)).toBeLessThanOrEqual(KEX_REKEY_TIMEOUT);
  });

  it("a client has no auth timeout", () => {
    const ses = stamped(new CliSession(new runopts(), new cli_runopts()));
    ses.connect_time -= AUTH_TIMEOUT * 2;
    expect(() => checktimeouts(ses)).not.toThrow();
  });
});

describe("the client's -o ConnectTimeout", () => {
  function client(secs: number): sshsession {
    const opts = new runopts();
    opts.connect_timeout_secs = secs;
    const ses = stamped(new CliSession(opts, new cli_runopts()));
    ses.connect_time_ms = gettime_wrapper();
    return ses;
  }

  it("counts milliseconds, not whole seconds: 1 s is not due at once, and is due after 1 s", () => {
    const ses = client(1);
    expect(() => checktimeouts(ses)).not.toThrow();
    expect(select_timeout(ses)).toBeGreaterThan(0.9);
    expect(select_timeout(ses)).toBeLessThanOrEqual(1);
    ses.connect_time_ms -= 1000;
    expect(select_timeout(ses)).toBe(0);
    expect(() => checktimeouts(ses)).toThrow(new DropbearExit(1, "Connect failed: Connection timed out", "ETIMEOUT"));
  });

  it("names the stage it fell due in, and is over once the first key exchange is done", () => {
    const ses = client(1);
    ses.connect_time_ms -= 1000;
    ses.sock_in = {} as sshsession["sock_in"];
    expect(() => checktimeouts(ses)).toThrow(new DropbearExit(1, "Connection timed out during banner exchange", "ETIMEOUT"));
    ses.remoteident = "SSH-2.0-x";
    expect(() => checktimeouts(ses)).toThrow(new DropbearExit(1, "Connection timed out during key exchange", "ETIMEOUT"));
    ses.kexstate.donefirstkex = true;
    ses.kexstate.sentkexinit = true;
    expect(() => checktimeouts(ses)).not.toThrow();
    expect(select_timeout(ses)).toBeGreaterThan(1);
  });
});

describe("idle timeout and max duration before the peer's version line", () => {
  for (const [name, ses] of [
    ["server", () => serverSession()],
    ["client", () => stamped(new CliSession(new runopts(), new cli_runopts()))],
  ] as const) {
    it(`-I ends a ${name} session whose peer never sent its version line, and select never waits less than 0`, () => {
      const s = ses();
      s.opts.idle_timeout_secs = 5;
      s.last_packet_time_idle = s.connect_time;
      expect(s.remoteident).toBeNull();
      expect(() => checktimeouts(s)).not.toThrow();
      s.last_packet_time_idle -= 6;
      expect(select_timeout(s)).toBe(0);
      expect(() => checktimeouts(s)).toThrow(new DropbearExit(0, "Idle timeout", "ETIMEOUT"));
    });

    it(`-M ends a ${name} session whose peer never sent its version line`, () => {
      const s = ses();
      s.opts.max_duration_secs = 5;
      s.last_packet_time_idle = s.connect_time;
      expect(() => checktimeouts(s)).not.toThrow();
      s.connect_time -= 6;
      expect(select_timeout(s)).toBe(0);
      expect(() => checktimeouts(s)).toThrow(new DropbearExit(0, "Max duration reached", "ETIMEOUT"));
    });
  }
});

describe("giving the C heap back after auth (check_memory)", () => {
  function talking(): sshsession {
    const ses = serverSession();
    ses.remoteident = "SSH-2.0-test";
    ses.owns_process = true;
    return ses;
  }

  it("never in a session that does not own its process (a library's)", () => {
    const ses = talking();
    ses.owns_process = false;
    ses.authstate.authdone = true;
    checktimeouts(ses);
    expect(ses.trim_rss).toBe(0);
  });

  it("looks only after auth, first to note the RSS, then once every 10 s", () => {
    const ses = talking();
    checktimeouts(ses);
    expect(ses.trim_rss).toBe(0);
    ses.authstate.authdone = true;
    checktimeouts(ses);
    expect(ses.trim_rss).toBeGreaterThan(0);
    expect(ses.trim_pending).toBe(false);
    expect(select_timeout(ses)).toBeGreaterThan(10);
    // Far above what was noted, but looked at less than 10 s ago: nothing yet.
    ses.trim_rss = 1;
    checktimeouts(ses);
    expect(ses.trim_pending).toBe(false);
  });

  it("trims an RSS far above the one after auth and looks again even when idle, until a trim gives little back", () => {
    const ses = talking();
    ses.authstate.authdone = true;
    checktimeouts(ses);
    ses.trim_rss = 1;
    ses.trim_check_time -= 10;
    checktimeouts(ses);
    expect(ses.trim_pending).toBe(true);
    expect(select_timeout(ses)).toBeLessThanOrEqual(10);
    // The same again at once: that trim finds next to nothing to give back.
    ses.trim_check_time -= 10;
    checktimeouts(ses);
    expect(ses.trim_pending).toBe(false);
    expect(select_timeout(ses)).toBeGreaterThan(10);
  });
});
