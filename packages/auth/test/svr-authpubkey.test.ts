import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buf_new, buf_putbyte, buf_putbytes, buf_putstring, type buffer } from "@dropbear-ts/buffer";
import { AUTH_TYPE_PASSWORD, AUTH_TYPE_PUBKEY, type PubKeyOptions, type SvrEmbed, type SvrSession } from "@dropbear-ts/core";
import { DropbearExit } from "@dropbear-ts/dbutil";
import {
  MAX_AUTHKEYS_LINE_COUNT,
  SSH_MSG_USERAUTH_FAILURE,
  SSH_MSG_USERAUTH_PK_OK,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_MSG_USERAUTH_SUCCESS,
} from "@dropbear-ts/options";
import {
  DROPBEAR_SIGNATURE_ED25519,
  DROPBEAR_SIGNATURE_RSA_SHA256,
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  buf_put_sign,
  sign_key_fingerprint,
  signkeyGenerateKey,
  signkeyPubBlob,
  signkeyPubLine,
  type sign_key,
  type signature_type,
} from "@dropbear-ts/signkey";
import {
  MAX_AUTHKEYS_LINE,
  checkfileperm,
  checkpubkey_line,
  checkpubkeyperms,
  svr_auth_pubkey,
  svr_authinitialise,
  svrAuthCheckDelayed,
  svrAuthCleanup,
} from "../src/index.js";
import { delayOver, deliver, newSvrSession, takePayloads, withLogs } from "./harness.js";

const ed = signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0);
const ed2 = signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0);
const ec = signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256);
const rsa = signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 2048);

function lineBuf(text: string | Buffer): buffer {
  const bytes = typeof text === "string" ? Buffer.from(text, "latin1") : text;
  const b = buf_new(Math.max(bytes.length, 1));
  buf_putbytes(b, bytes);
  b.pos = 0;
  return b;
}

function check(text: string | Buffer, key: sign_key = ed): { ok: boolean; opts: PubKeyOptions | null } {
  const ret = { value: null as PubKeyOptions | null };
  const algo = key.type === DROPBEAR_SIGNKEY_ED25519 ? "ssh-ed25519" : key.type === DROPBEAR_SIGNKEY_RSA ? "ssh-rsa" : "ecdsa-sha2-nistp256";
  const ok = checkpubkey_line(lineBuf(text), 1, "authorized_keys", algo, signkeyPubBlob(key), ret);
  return { ok, opts: ret.value };
}

describe("checkpubkey_line", () => {
  const line = signkeyPubLine(ed);

  it("matches the key's own line, with or without a comment", () => {
    expect(check(line).ok).toBe(true);
    expect(check(`${line} user@host`).ok).toBe(true);
    expect(check(signkeyPubLine(ec)).ok).toBe(false);
    expect(check(signkeyPubLine(ec), ec).ok).toBe(true);
    expect(check(signkeyPubLine(rsa), rsa).ok).toBe(true);
    expect(check(signkeyPubLine(ed2)).ok).toBe(false);
  });

  it("takes the comment's first word as SSH_PUBKEYINFO only if it is shell-safe", () => {
    expect(check(`${line} alice@example.com more words`).opts!.info_env).toBe("alice@example.com");
    expect(check(`${line} a$(reboot)`).opts!.info_env).toBeNull();
    expect(check(line).opts!.info_env).toBeNull();
  });

  it("skips comments, blank lines and odd lengths", () => {
    expect(check(`# ${line}`).ok).toBe(false);
    expect(check(`   #${line}`).ok).toBe(false);
    expect(check("").ok).toBe(false);
    expect(check("ssh-ed25519").ok).toBe(false);
    // Only blanks: Dropbear's bounds check would end the session; here the line is skipped.
    expect(check(" ".repeat(40)).ok).toBe(false);
    expect(check(`${line} ${"x".repeat(MAX_AUTHKEYS_LINE)}`).ok).toBe(false);
    expect(check(Buffer.concat([Buffer.from(line), Buffer.from([0]), Buffer.from(" c")])).ok).toBe(false);
  });

  it("allows leading blanks and options before the key", () => {
    // Blanks before a bare key make Dropbear read the algorithm as options: no match.
    expect(check(`  \t${line}`).ok).toBe(false);
    const r = check(`no-pty,command="echo a b\tc",permitopen="h:1" ${line} c`);
    expect(r.ok).toBe(true);
    expect(r.opts!.no_pty_flag).toBe(true);
    expect(r.opts!.forced_command).toBe("echo a b\tc");
    expect(check(`no-pty\t${line}`).ok).toBe(true);
    expect(check(`  restrict ${line}`).opts!.no_port_forwarding_flag).toBe(true);
  });

  it("a matching key with options it cannot parse does not match", () => {
    expect(check(`from="10.0.0.1" ${line}`).ok).toBe(false);
    expect(check(`no-pty,bogus ${line}`).ok).toBe(false);
  });

  it("needs exactly one space between algorithm and base64, and a whole blob", () => {
    expect(check(line.replace(" ", "  ")).ok).toBe(false);
    expect(check(line.slice(0, -4)).ok).toBe(false);
    expect(check(line.replace("ssh-ed25519", "ssh-rsa")).ok).toBe(false);
  });
});

describe("permissions", () => {
  let home: string;
  let ses: SvrSession;

  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), "dbts-home-"));
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  function setup(uid: number): void {
    ses = newSvrSession();
    ses.authstate.pw_uid = uid;
    ses.authstate.pw_gid = uid;
    ses.authstate.pw_dir = home;
    mkdirSync(join(home, ".ssh"), { recursive: true });
    chmodSync(home, 0o755);
    chmodSync(join(home, ".ssh"), 0o700);
    chownSync(home, uid, uid);
    chownSync(join(home, ".ssh"), uid, uid);
  }

  it("accepts directories owned by the user or root and not group/world writable", () => {
    setup(0);
    expect(checkpubkeyperms(ses)).toBe(true);
    setup(1234);
    expect(checkpubkeyperms(ses)).toBe(true);
  });

  it("refuses a group- or world-writable directory, logging once", async () => {
    setup(1234);
    chmodSync(join(home, ".ssh"), 0o770);
    const { result, logs } = await withLogs(() => [checkpubkeyperms(ses), checkpubkeyperms(ses)]);
    expect(result).toEqual([false, false]);
    expect(logs).toEqual([`${home}/.ssh must be owned by user or root, and not writable by group or others`]);
    chmodSync(join(home, ".ssh"), 0o700);
    chmodSync(home, 0o757);
    expect(checkpubkeyperms(ses)).toBe(false);
  });

  it("refuses a directory owned by someone else", () => {
    setup(1234);
    chownSync(home, 4321, 4321);
    expect(checkfileperm(ses, home)).toBe(false);
    expect(checkpubkeyperms(ses)).toBe(false);
  });

  it("walks up to / when the file is outside the home directory", () => {
    setup(0);
    ses.svr_ses.svr_opts.authorized_keys_dir = join(home, ".ssh");
    ses.authstate.pw_dir = "/nonexistent";
    // The temporary directory itself is world-writable (sticky /tmp).
    expect(checkpubkeyperms(ses)).toBe(tmpdir() !== "/tmp");
  });
});

/** A publickey USERAUTH_REQUEST payload; with `signer` it is signed as a client would. */
function pubkeyRequest(ses: SvrSession, user: string, key: sign_key, sigtype: signature_type, signer: sign_key | null): Buffer {
  const p = buf_new(4096);
  buf_putbyte(p, SSH_MSG_USERAUTH_REQUEST);
  buf_putstring(p, user);
  buf_putstring(p, "ssh-connection");
  buf_putstring(p, "publickey");
  buf_putbyte(p, signer ? 1 : 0);
  buf_putstring(p, sigtype === DROPBEAR_SIGNATURE_RSA_SHA256 ? "rsa-sha2-256" : sigtype === DROPBEAR_SIGNATURE_ED25519 ? "ssh-ed25519" : "ecdsa-sha2-nistp256");
  buf_putstring(p, signkeyPubBlob(key));
  if (signer) {
    const signed = buf_new(4096);
    buf_putstring(signed, ses.session_id!);
    buf_putbytes(signed, p.data.subarray(0, p.len));
    buf_put_sign(p, signer, sigtype, signed);
  }
  return Buffer.from(p.data.subarray(0, p.len));
}

describe("svr_auth_pubkey", () => {
  let home: string;
  beforeAll(() => {
    home = mkdtempSync(join(tmpdir(), "dbts-pk-"));
    chmodSync(home, 0o755);
    mkdirSync(join(home, ".ssh"), { mode: 0o700 });
    writeFileSync(
      join(home, ".ssh", "authorized_keys"),
      [
        "# keys",
        "",
        `restrict,command="uptime" ${signkeyPubLine(ed)} alice@laptop`,
        signkeyPubLine(rsa),
        `from="10.0.0.1" ${signkeyPubLine(ec)}`,
      ].join("\n") + "\n",
    );
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  function session(): SvrSession {
    const ses = newSvrSession();
    svr_authinitialise(ses);
    const a = ses.authstate;
    a.username = "alice";
    a.pw_name = "alice";
    a.pw_uid = 0;
    a.pw_gid = 0;
    a.pw_dir = home;
    a.pw_shell = "/bin/sh";
    return ses;
  }

  const run = (ses: SvrSession, payload: Buffer) => deliver(ses, payload, (s) => {
    // What recv_msg_userauth_request reads before the method.
    s.payload!.pos = payload.indexOf("publickey") + "publickey".length;
    svr_auth_pubkey(s, true);
  });

  it("answers a query for a listed key with PK_OK echoing algorithm and blob", () => {
    const ses = session();
    run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, null));
    const [reply] = takePayloads(ses);
    const expected = buf_new(512);
    buf_putbyte(expected, SSH_MSG_USERAUTH_PK_OK);
    buf_putstring(expected, "ssh-ed25519");
    buf_putstring(expected, signkeyPubBlob(ed));
    expect(reply).toEqual(Buffer.from(expected.data.subarray(0, expected.len)));
  });

  it("accepts a good signature, logs the fingerprint and keeps the line's options", async () => {
    const ses = session();
    const { logs } = await withLogs(() => run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, ed)));
    expect(takePayloads(ses)).toEqual([Buffer.from([SSH_MSG_USERAUTH_SUCCESS])]);
    expect(ses.authstate.authdone).toBe(true);
    expect(logs).toContain(
      `Pubkey auth succeeded for 'alice' with ssh-ed25519 key ${sign_key_fingerprint(signkeyPubBlob(ed))} from 127.0.0.1:40000`,
    );
    expect(ses.authstate.pubkey_options!.forced_command).toBe("uptime");
    expect(ses.authstate.pubkey_options!.no_pty_flag).toBe(true);
    expect(ses.authstate.pubkey_options!.info_env).toBe("alice@laptop");
  });

  it("takes rsa-sha2-256 for an ssh-rsa line", () => {
    const ses = session();
    run(ses, pubkeyRequest(ses, "alice", rsa, DROPBEAR_SIGNATURE_RSA_SHA256, rsa));
    expect(takePayloads(ses)).toEqual([Buffer.from([SSH_MSG_USERAUTH_SUCCESS])]);
  });

  it("refuses a signature made by another key, after the delay", async () => {
    const ses = session();
    const t0 = performance.now();
    ses.authstate.auth_starttime = t0;
    const { logs } = await withLogs(async () => {
      run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, ed2));
      expect(takePayloads(ses)).toEqual([]);
      // The delay's own timer sends the failure.
      await delayOver(ses);
    });
    const [reply] = takePayloads(ses);
    expect(reply[0]).toBe(SSH_MSG_USERAUTH_FAILURE);
    expect(ses.authstate.failcount).toBe(1);
    expect(logs.some((l) => l.startsWith("Pubkey auth bad signature for 'alice' with key SHA256:"))).toBe(true);
  });

  it("refuses unlisted keys and keys on lines with unknown options; queries are free at first", () => {
    const ses = session();
    run(ses, pubkeyRequest(ses, "alice", ed2, DROPBEAR_SIGNATURE_ED25519, null));
    run(ses, pubkeyRequest(ses, "alice", ec, 1, null));
    const replies = takePayloads(ses);
    expect(replies.map((r) => r[0])).toEqual([SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_FAILURE]);
    expect(ses.authstate.serv_pubkey_query_count).toBe(2);
    expect(ses.authstate.failcount).toBe(0);
  });

  it("with -t, a good key is a partial success until the password is given too", () => {
    const ses = newSvrSession((o) => (o.multiauthmethod = true));
    svr_authinitialise(ses);
    Object.assign(ses.authstate, { username: "alice", username_sent: Buffer.from("alice"), pw_name: "alice", pw_dir: home, pw_shell: "/bin/sh" });
    run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, ed));
    const [reply] = takePayloads(ses);
    expect(reply[0]).toBe(SSH_MSG_USERAUTH_FAILURE);
    expect(reply.subarray(1).toString("latin1")).toContain("password");
    expect(reply[reply.length - 1]).toBe(1);
    expect(ses.authstate.authtypes).toBe(AUTH_TYPE_PASSWORD);
    expect(ses.authstate.authtypes & AUTH_TYPE_PUBKEY).toBe(0);
  });

  it("an invalid user gets a failure without a delay or a count", () => {
    const ses = session();
    const payload = pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, ed);
    deliver(ses, payload, (s) => {
      s.payload!.pos = payload.indexOf("publickey") + "publickey".length;
      svr_auth_pubkey(s, false);
    });
    expect(takePayloads(ses).map((r) => r[0])).toEqual([SSH_MSG_USERAUTH_FAILURE]);
    expect(ses.authstate.failcount).toBe(0);
    svrAuthCleanup(ses);
  });

  it("reads at most MAX_AUTHKEYS_LINE_COUNT lines", () => {
    const many = mkdtempSync(join(tmpdir(), "dbts-many-"));
    chmodSync(many, 0o755);
    mkdirSync(join(many, ".ssh"), { mode: 0o700 });
    const filler = Array.from({ length: MAX_AUTHKEYS_LINE_COUNT - 1 }, () => "# filler");
    writeFileSync(join(many, ".ssh", "authorized_keys"), [...filler, signkeyPubLine(ed), signkeyPubLine(ed2)].join("\n"));
    const ses = session();
    ses.authstate.pw_dir = many;
    run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, null));
    run(ses, pubkeyRequest(ses, "alice", ed2, DROPBEAR_SIGNATURE_ED25519, null));
    expect(takePayloads(ses).map((r) => r[0])).toEqual([SSH_MSG_USERAUTH_PK_OK, SSH_MSG_USERAUTH_FAILURE]);
    rmSync(many, { recursive: true });
  });

  it("opens authorized_keys as the user", () => {
    // A file only root may read, in a home owned by the (unprivileged) user.
    const h = mkdtempSync(join(tmpdir(), "dbts-asuser-"));
    chmodSync(h, 0o755);
    mkdirSync(join(h, ".ssh"), { mode: 0o700 });
    writeFileSync(join(h, ".ssh", "authorized_keys"), `${signkeyPubLine(ed)}\n`, { mode: 0o600 });
    chownSync(h, 1234, 1234);
    chownSync(join(h, ".ssh"), 1234, 1234);
    const ses = session();
    Object.assign(ses.authstate, { pw_dir: h, pw_uid: 1234, pw_gid: 1234 });
    const canSwitch = typeof process.seteuid === "function" && process.getuid!() === 0;
    run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, null));
    // The file (root's, 0600) stays unreadable to uid 1234.
    expect(takePayloads(ses)[0][0]).toBe(canSwitch ? SSH_MSG_USERAUTH_FAILURE : SSH_MSG_USERAUTH_PK_OK);
    expect(process.geteuid!()).toBe(process.getuid!());
    chownSync(join(h, ".ssh", "authorized_keys"), 1234, 1234);
    run(ses, pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, null));
    expect(takePayloads(ses)[0][0]).toBe(SSH_MSG_USERAUTH_PK_OK);
    rmSync(h, { recursive: true });
  });

  it("a flood of queries: 5 free, then delayed and counted until Max auth tries", async () => {
    const ses = session();
    const query = pubkeyRequest(ses, "alice", ed2, DROPBEAR_SIGNATURE_ED25519, null);
    let answered = 0;
    let exit: unknown = null;
    for (let i = 0; i < 1000 && exit === null; i++) {
      try {
        run(ses, query);
        await delayOver(ses);
        svrAuthCheckDelayed(ses);
      } catch (e) {
        exit = e;
      }
      answered += takePayloads(ses).length;
    }
    expect(exit).toEqual(new DropbearExit(1, "Max auth tries reached - user 'alice'"));
    // MAX_PUBKEY_QUERIES - MAX_AUTH_TRIES free ones, then MAX_AUTH_TRIES + 1 counted.
    expect(ses.authstate.serv_pubkey_query_count).toBe(16);
    // As in C the last FAILURE is queued before the exit, which then drops the queue unsent.
    expect(answered).toBe(16);
  });

  it("a truncated request ends the session", () => {
    const ses = session();
    const full = pubkeyRequest(ses, "alice", ed, DROPBEAR_SIGNATURE_ED25519, ed);
    // Cut inside the key blob.
    const cut = full.indexOf(signkeyPubBlob(ed)) + 10;
    expect(() => run(ses, full.subarray(0, cut))).toThrow(DropbearExit);
  });
});

describe("svr_auth_pubkey with an embedding program's answer (serversession.embed)", () => {
  const refuse = (): never => {
    throw new Error("not asked in these tests");
  };
  function embedded(checkpubkey: SvrEmbed["checkpubkey"]): SvrSession {
    const ses = newSvrSession();
    ses.svr_ses.embed = {
      fill_passwd: refuse,
      checknone: refuse,
      checkpassword: refuse,
      checkpubkey,
      sessioncommand: refuse,
      sessionclosed: refuse,
      sessionsignal: refuse,
      sessionwinchange: refuse,
      tcpdirect: refuse,
      remotetcp: refuse,
      streamlocal: refuse,
      remotestreamlocal: refuse,
    };
    svr_authinitialise(ses);
    Object.assign(ses.authstate, { username: "anyone", username_sent: Buffer.from("anyone"), pw_name: "anyone", pw_dir: "/nonexistent", pw_shell: "/bin/sh" });
    return ses;
  }
  const run = (ses: SvrSession, payload: Buffer): void =>
    deliver(ses, payload, (s) => {
      s.payload!.pos = payload.indexOf("publickey") + "publickey".length;
      svr_auth_pubkey(s, true);
    });
  /** What the session loop does after process_packet: wait for the answer. */
  async function awaitAnswer(ses: SvrSession): Promise<void> {
    const work = ses.awaitAfterPacket;
    ses.awaitAfterPacket = null;
    await work;
  }

  it("asks with the algorithm and blob, and answers a query with PK_OK only for a yes", async () => {
    const asked: string[] = [];
    const ses = embedded(async (_s, algo, blob) => {
      asked.push(`${algo} ${Buffer.from(blob).equals(signkeyPubBlob(ed))}`);
      return algo === "ssh-ed25519";
    });
    run(ses, pubkeyRequest(ses, "anyone", ed, DROPBEAR_SIGNATURE_ED25519, null));
    expect(takePayloads(ses)).toEqual([]);
    await awaitAnswer(ses);
    run(ses, pubkeyRequest(ses, "anyone", ec, 1, null));
    await awaitAnswer(ses);
    expect(takePayloads(ses).map((r) => r[0])).toEqual([SSH_MSG_USERAUTH_PK_OK, SSH_MSG_USERAUTH_FAILURE]);
    expect(asked).toEqual(["ssh-ed25519 true", "ecdsa-sha2-nistp256 false"]);
  });

  it("still verifies the signature: a yes with another key's signature fails after the delay", async () => {
    const ses = embedded(() => Promise.resolve(true));
    run(ses, pubkeyRequest(ses, "anyone", ed, DROPBEAR_SIGNATURE_ED25519, ed2));
    await awaitAnswer(ses);
    await delayOver(ses);
    expect(takePayloads(ses).map((r) => r[0])).toEqual([SSH_MSG_USERAUTH_FAILURE]);
    expect(ses.authstate.authdone).toBe(false);
    expect(ses.authstate.failcount).toBe(1);
  });

  it("lets the user in for a yes and a good signature, with no authorized_keys options", async () => {
    const ses = embedded(() => true);
    run(ses, pubkeyRequest(ses, "anyone", ed, DROPBEAR_SIGNATURE_ED25519, ed));
    expect(ses.awaitAfterPacket).toBeNull();
    expect(takePayloads(ses)).toEqual([Buffer.from([SSH_MSG_USERAUTH_SUCCESS])]);
    expect(ses.authstate.authdone).toBe(true);
    expect(ses.authstate.pubkey_options).toBeNull();
  });

  it("takes a rejected answer as no", async () => {
    const ses = embedded(() => Promise.reject(new Error("database down")));
    run(ses, pubkeyRequest(ses, "anyone", ed, DROPBEAR_SIGNATURE_ED25519, ed));
    await awaitAnswer(ses);
    await delayOver(ses);
    expect(takePayloads(ses).map((r) => r[0])).toEqual([SSH_MSG_USERAUTH_FAILURE]);
    expect(ses.authstate.authdone).toBe(false);
  });
});
