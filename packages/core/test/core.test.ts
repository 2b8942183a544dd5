// The structs of Dropbear's headers: their defaults are the values the C code starts from
// (calloc's zero, or what svr_getopts / cli_getopts assign before reading argv), the constants
// are the headers', and every session and option set owns its containers (C's globals are one
// per process; here many sessions share a process).
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { dropbear_mode_none, dropbear_nocipher, dropbear_nohash } from "@dropbear-ts/crypto";
import { isempty } from "@dropbear-ts/dbutil";
import { StreamFd } from "@dropbear-ts/netio";
import { DEFAULT_IDLE_TIMEOUT, DEFAULT_KEEPALIVE, DEFAULT_RECV_WINDOW, MAX_AUTH_TRIES, MAX_RECV_WINDOW } from "@dropbear-ts/options";
import { PassThrough } from "node:stream";
import {
  AUTH_TYPE_INTERACT,
  AUTH_TYPE_NONE,
  AUTH_TYPE_PASSWORD,
  AUTH_TYPE_PUBKEY,
  AlgoTables,
  AuthState,
  CHAN_EXTEND_SIZE,
  ChanSess,
  Channel,
  DROPBEAR_COMP_NONE,
  DROPBEAR_COMP_ZLIB,
  DROPBEAR_COMP_ZLIB_DELAY,
  FD_CLOSED,
  FD_UNINIT,
  FwdListener,
  KEXState,
  LISTENER_EXTEND_SIZE,
  MAX_LISTENERS,
  MAX_SESSION_RECV_WINDOW,
  OUR_DEFAULT_RECV_WINDOW,
  PUBKEY_OPTIONS_ANY_PORT,
  PubKeyOptions,
  SSH_OPEN_ADMINISTRATIVELY_PROHIBITED,
  SSH_OPEN_CONNECT_FAILED,
  SSH_OPEN_IN_PROGRESS,
  SSH_OPEN_RESOURCE_SHORTAGE,
  SSH_OPEN_UNKNOWN_CHANNEL_TYPE,
  TCPFwdEntry,
  chanfdIsOpen,
  cli_kex_state,
  cli_runopts,
  cli_state,
  exitinfo,
  key_context,
  key_context_directional,
  CliSession,
  runopts,
  SvrSession,
  svr_runopts,
  type ChanType,
} from "../src/index.js";

describe("constants as in Dropbear's headers", () => {
  it("channel.h, listener.h, auth.h, algo.h, common-channel.c", () => {
    expect([SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, SSH_OPEN_CONNECT_FAILED, SSH_OPEN_UNKNOWN_CHANNEL_TYPE, SSH_OPEN_RESOURCE_SHORTAGE, SSH_OPEN_IN_PROGRESS]).toEqual([1, 2, 3, 4, 99]);
    expect(CHAN_EXTEND_SIZE).toBe(3);
    expect([MAX_LISTENERS, LISTENER_EXTEND_SIZE]).toEqual([20, 1]);
    expect([AUTH_TYPE_NONE, AUTH_TYPE_PUBKEY, AUTH_TYPE_PASSWORD, AUTH_TYPE_INTERACT]).toEqual([1, 2, 4, 8]);
    expect(PUBKEY_OPTIONS_ANY_PORT).toBe(0xffffffff);
    expect([DROPBEAR_COMP_NONE, DROPBEAR_COMP_ZLIB, DROPBEAR_COMP_ZLIB_DELAY]).toEqual([0, 1, 2]);
    expect([FD_UNINIT, FD_CLOSED]).toEqual([-2, -1]);
  });

  it("the client's state enums keep Dropbear's order", () => {
    expect([cli_kex_state.KEX_NOTHING, cli_kex_state.KEXINIT_RCVD, cli_kex_state.KEXDH_INIT_SENT, cli_kex_state.KEXDONE]).toEqual([0, 1, 2, 3]);
    expect(cli_state.SESSION_RUNNING).toBe(5);
  });
});

describe("option defaults", () => {
  it("runopts: no keepalive, no idle timeout, our 2 MiB window within Dropbear's limits", () => {
    const o = new runopts();
    expect(o.keepalive_secs).toBe(DEFAULT_KEEPALIVE);
    expect(o.idle_timeout_secs).toBe(DEFAULT_IDLE_TIMEOUT);
    expect([DEFAULT_KEEPALIVE, DEFAULT_IDLE_TIMEOUT]).toEqual([0, 0]);
    expect(o.recv_window).toBe(OUR_DEFAULT_RECV_WINDOW);
    expect(OUR_DEFAULT_RECV_WINDOW).toBeGreaterThan(DEFAULT_RECV_WINDOW);
    expect(OUR_DEFAULT_RECV_WINDOW).toBeLessThanOrEqual(MAX_RECV_WINDOW);
    // The session budget holds whole default windows and at least one of the largest -W.
    expect(MAX_SESSION_RECV_WINDOW % OUR_DEFAULT_RECV_WINDOW).toBe(0);
    expect(MAX_SESSION_RECV_WINDOW).toBeGreaterThanOrEqual(MAX_RECV_WINDOW);
    expect(o.listen_fwd_all || o.compression || o.usingsyslog || o.disable_ip_tos).toBe(false);
    expect(o.algos).toBeInstanceOf(AlgoTables);
  });

  it("svr_runopts: as svr_getopts sets them before argv", () => {
    const s = new svr_runopts();
    expect(s.forkbg).toBe(true);
    expect(s.domotd).toBe(true);
    expect(s.maxauthtries).toBe(MAX_AUTH_TRIES);
    expect(MAX_AUTH_TRIES).toBe(10);
    expect(s.pidfile).toBe("/var/run/dropbear.pid");
    expect(s.authorized_keys_dir).toBe("~/.ssh");
    expect(s.reexec_childpipe).toBe(-1);
    expect([s.inetdmode, s.noremotefwd, s.nolocaltcp, s.delay_hostkey, s.noauthpass, s.norootlogin]).toEqual([false, false, false, false, false, false]);
    expect(s.ports).toEqual([]);
    expect(s.forced_command).toBeNull();
  });

  it("cli_runopts: as cli_getopts sets them before argv", () => {
    const c = new cli_runopts();
    expect(c.wantpty).toBe(9);
    expect(c.ask_hostkey).toBe(true);
    expect(c.always_accept_key).toBe(false);
    expect(c.no_hostkey_check).toBe(false);
    expect(c.password_authentication).toBe(true);
    expect(c.agent_fd).toBe(-1);
    expect(c.remotefwds.first).toBeNull();
    expect(c.localfwds.first).toBeNull();
    expect(c.privkeys.first).toBeNull();
  });

  it("each option object owns its containers", () => {
    const [a, b] = [new runopts(), new runopts()];
    expect(a.algos).not.toBe(b.algos);
    const [s1, s2] = [new svr_runopts(), new svr_runopts()];
    expect(s1.hostkey).not.toBe(s2.hostkey);
    expect(s1.ports).not.toBe(s2.ports);
    const [c1, c2] = [new cli_runopts(), new cli_runopts()];
    expect(c1.remotefwds).not.toBe(c2.remotefwds);
    expect(c1.localfwds).not.toBe(c2.localfwds);
  });
});

describe("sshsession", () => {
  it("a server session has the server half only, a client session the client half only", () => {
    const svr_opts = new svr_runopts();
    const svr = new SvrSession(new runopts(), svr_opts);
    expect(svr.isserver).toBe(true);
    expect(svr.svr_ses.svr_opts).toBe(svr_opts);
    expect(svr.cli_ses).toBeNull();
    const cli_opts = new cli_runopts();
    const cli = new CliSession(new runopts(), cli_opts);
    expect(cli.isserver).toBe(false);
    expect(cli.cli_ses.cli_opts).toBe(cli_opts);
    expect(cli.svr_ses).toBeNull();
  });

  it("starts as common_session_init finds it: no keys, no kex, nothing queued", () => {
    const ses = new SvrSession(new runopts(), new svr_runopts());
    expect(ses.session_id).toBeNull();
    expect(ses.newkeys).toBeNull();
    expect(ses.dataallowed).toBe(false);
    expect([ses.transseq, ses.recvseq, ses.requirenext, ses.lastpacket]).toEqual([0, 0, 0, 0]);
    expect(isempty(ses.writequeue)).toBe(true);
    expect(ses.writequeue_len).toBe(0);
    expect(ses.chancount).toBe(0);
    expect(ses.authstate.authdone).toBe(false);
    expect(ses.exitflag).toBe(false);
    for (const dir of [ses.keys.recv, ses.keys.trans]) {
      expect(dir.algo_crypt).toBe(dropbear_nocipher);
      expect(dir.crypt_mode).toBe(dropbear_mode_none);
      expect(dir.algo_mac).toBe(dropbear_nohash);
      expect(dir.valid).toBe(false);
      expect(dir.mackey.length).toBe(0);
    }
    const k = ses.kexstate;
    expect([k.sentkexinit, k.recvkexinit, k.donefirstkex, k.donesecondkex, k.strict_kex, k.needrekey]).toEqual([false, false, false, false, false, false]);
    expect(ses.svr_ses.childpipe).toBe(-1);
    expect(ses.svr_ses.lastexit.exitpid).toBe(-1);
  });

  it("two sessions in one process share no mutable state", () => {
    const opts = new runopts();
    const a = new SvrSession(opts, new svr_runopts());
    const b = new SvrSession(opts, new svr_runopts());
    for (const field of ["writequeue", "channels", "listeners", "kexstate", "keys", "algos", "authstate", "conn_pending", "reply_queue", "identbuf"] as const) {
      expect(a[field], field).not.toBe(b[field]);
    }
    expect(a.keys.recv).not.toBe(a.keys.trans);
    expect(a.svr_ses.childpids).not.toBe(b.svr_ses.childpids);
    // The options are shared on purpose: one program run, many sessions.
    expect(a.opts).toBe(b.opts);
  });

  it("a byte count that passes 2^31 leaves its objects' shape as it was (StreamFd.handed, the session's writequeue_total)", () => {
    // V8's %HaveSameMap compares hidden classes: a count widened from a small integer would
    // give the object a new one, and retire the optimized code that knew the old.
    const dist = (pkg: string) => JSON.stringify(new URL(`../../${pkg}/dist/index.js`, import.meta.url).href);
    const script = `
      const { PassThrough } = await import("node:stream");
      const { StreamFd } = await import(${dist("netio")});
      const { SvrSession, runopts, svr_runopts } = await import(${dist("core")});
      const same = (make, count) => { const a = make(), b = make(); b[count] += 2 ** 31 + 5; return %HaveSameMap(a, b); };
      console.log(same(() => new StreamFd(new PassThrough()), "handed"), same(() => new SvrSession(new runopts(), new svr_runopts()), "writequeue_total"));`;
    const r = spawnSync(process.execPath, ["--allow-natives-syntax", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout.trim()).toBe("true true");
  });
});

describe("the other structs", () => {
  it("key_context and key_context_directional start with no cipher, MAC or compression", () => {
    const kc = new key_context();
    expect(kc.algo_kex).toBeNull();
    expect(kc.recv).not.toBe(kc.trans);
    const d = new key_context_directional();
    expect([d.algo_comp, d.mac_etm, d.zstream]).toEqual([0, false, null]);
    expect(new KEXState().lastkextime).toBe(0);
  });

  it("a Channel starts as newchannel leaves it, before its fds are set", () => {
    const type: ChanType = { name: "t", inithandler: null, check_close: null, reqhandler: null, closehandler: null, cleanup: null };
    const ch = new Channel(4, type, 7, 1000, 32768, 0);
    expect([ch.index, ch.remotechan, ch.transwindow, ch.transmaxpacket]).toEqual([4, 7, 1000, 32768]);
    expect([ch.writefd, ch.readfd, ch.errfd]).toEqual([FD_UNINIT, FD_UNINIT, FD_CLOSED]);
    expect([ch.sent_close, ch.recv_close, ch.sent_eof, ch.recv_eof, ch.await_open, ch.flushing]).toEqual([false, false, false, false, false, false]);
    expect(ch.writebuf).toBeNull();
    expect(ch.extrabuf).toBeNull();
    expect(ch.conn_pending).toBeNull();
  });

  it("chanfdIsOpen: an Fd is open, the two sentinels are not", () => {
    const fd = new StreamFd(new PassThrough());
    expect(chanfdIsOpen(fd)).toBe(true);
    expect(chanfdIsOpen(FD_UNINIT)).toBe(false);
    expect(chanfdIsOpen(FD_CLOSED)).toBe(false);
    fd.close();
  });

  it("auth, forwarding and child state start empty", () => {
    const a = new AuthState();
    expect([a.username, a.authtypes, a.failcount, a.authdone, a.pubkey_options]).toEqual([null, 0, 0, false, null]);
    const p = new PubKeyOptions();
    expect([p.no_port_forwarding_flag, p.forced_command, p.permit_open_destinations, p.permit_listens]).toEqual([false, null, null, null]);
    const e = new exitinfo();
    expect([e.exitpid, e.exitstatus, e.exitcore]).toEqual([-1, 0, false]);
    const f = new FwdListener();
    expect([f.listenaddr, f.request_listenaddr, f.fwd_type, f.socket_path]).toEqual([null, null, "direct", null]);
    const t = new TCPFwdEntry();
    expect([t.listenaddr, t.have_reply]).toEqual([null, false]);
    const cs = new ChanSess();
    expect(cs.cmd).toBeNull();
  });
});
