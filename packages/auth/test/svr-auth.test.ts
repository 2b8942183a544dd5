import { execFileSync } from "node:child_process";
import { closeSync, fstatSync, openSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buf_new, buf_putbyte, buf_putstring } from "@dropbear-ts/buffer";
import type { SvrSession } from "@dropbear-ts/core";
import { DropbearExit, getgrnam_gid } from "@dropbear-ts/dbutil";
import {
  SSH_MSG_SERVICE_ACCEPT,
  SSH_MSG_SERVICE_REQUEST,
  SSH_MSG_USERAUTH_BANNER,
  SSH_MSG_USERAUTH_FAILURE,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_MSG_USERAUTH_SUCCESS,
} from "@dropbear-ts/options";
import {
  checkusername,
  constant_time_strcmp,
  crypt,
  get_user_shell,
  getpwnam,
  recv_msg_service_request,
  recv_msg_userauth_request,
  svrAuthCheckDelayed,
  svrAuthDelayPending,
  svr_authinitialise,
} from "../src/index.js";
import { delayOver, deliver, newSvrSession, takePayloads, withLogs } from "./harness.js";

// Hashes of "secret" made by other tools: openssl passwd -6 / -5, and perl's crypt() (libxcrypt).
const SHA512_SECRET = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
const SHA256_SECRET = "$5$saltsalt$0IyaXrmV7.sGNS6tirgqHLqX/G.FBvgkYA.lpPdS5sA";
const YESCRYPT_SECRET = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$GmcwIgvdUC9qLWcKCi6gklUa1dM3ziD43YxYNURLKy0";

const isRoot = process.getuid!() === 0;

function request(user: string | Buffer, method: string, extra?: (b: ReturnType<typeof buf_new>) => void, service = "ssh-connection"): Buffer {
  const b = buf_new(4096);
  buf_putbyte(b, SSH_MSG_USERAUTH_REQUEST);
  buf_putstring(b, user);
  buf_putstring(b, service);
  buf_putstring(b, method);
  extra?.(b);
  return Buffer.from(b.data.subarray(0, b.len));
}

function passwordRequest(user: string, password: string | Buffer, change = false): Buffer {
  return request(user, "password", (b) => {
    buf_putbyte(b, change ? 1 : 0);
    buf_putstring(b, password);
  });
}

const send = (ses: SvrSession, payload: Buffer) => deliver(ses, payload, recv_msg_userauth_request);
const types = (ses: SvrSession) => takePayloads(ses).map((p) => p[0]);

function session(setup?: Parameters<typeof newSvrSession>[0]): SvrSession {
  const ses = newSvrSession(setup);
  svr_authinitialise(ses);
  return ses;
}

/** Wait for the failure delay to end, then do what the server's loop handler does. */
async function afterDelay(ses: SvrSession): Promise<void> {
  await delayOver(ses);
  svrAuthCheckDelayed(ses);
}

describe("crypt and constant_time_strcmp", () => {
  it("verifies yescrypt, sha512-crypt and sha256-crypt hashes", () => {
    for (const h of [SHA512_SECRET, SHA256_SECRET, YESCRYPT_SECRET]) {
      expect(crypt(Buffer.from("secret"), h)).toBe(h);
      expect(crypt(Buffer.from("Secret"), h)).not.toBe(h);
    }
  });

  it("stops at a NUL as C would, and gives libxcrypt's failure token for locked entries", () => {
    expect(crypt(Buffer.from("secret\0tail"), SHA512_SECRET)).toBe(SHA512_SECRET);
    expect(crypt(Buffer.from("secret"), "!")).toBe("*0");
    expect(crypt(Buffer.from("secret"), `!${SHA512_SECRET}`)).toBe("*0");
    expect(crypt(Buffer.from("secret"), "*0")).toBe("*1");
    expect(crypt(Buffer.from("secret"), "")).toBe("*0");
  });

  it("constant_time_strcmp is 0 only for equal strings", () => {
    expect(constant_time_strcmp("abc", "abc")).toBe(0);
    expect(constant_time_strcmp("abc", "abd")).not.toBe(0);
    expect(constant_time_strcmp("abc", "abcd")).not.toBe(0);
    expect(constant_time_strcmp("", "")).toBe(0);
  });
});

describe("checkusername", () => {
  const check = async (ses: SvrSession, name: string | Buffer) =>
    withLogs(() => checkusername(ses, typeof name === "string" ? Buffer.from(name) : name));

  it("accepts root (a real account with a listed shell)", async () => {
    const ses = session();
    const { result, logs } = await check(ses, "root");
    expect(result).toBe(true);
    expect(logs).toEqual([]);
    expect(ses.authstate.pw_name).toBe("root");
    expect(ses.authstate.pw_dir).toBe(getpwnam("root")!.pw_dir);
    expect(get_user_shell(ses)).toBe(getpwnam("root")!.pw_shell || "/bin/sh");
  });

  it("refuses an unknown user once in the log, then from the cache", async () => {
    const ses = session();
    expect(await check(ses, "no-such-user-dbts")).toEqual({ result: false, logs: ["Login attempt for nonexistent user from 127.0.0.1:40000"] });
    expect(await check(ses, "no-such-user-dbts")).toEqual({ result: false, logs: [] });
  });

  it("refuses a shell that /etc/shells does not list", async () => {
    const nobody = getpwnam("nobody");
    if (nobody === null || ["/bin/sh", "/bin/bash"].includes(nobody.pw_shell)) return;
    const ses = session();
    expect(await check(ses, "nobody")).toEqual({ result: false, logs: ["User 'nobody' has invalid shell, rejected"] });
  });

  it("-w refuses root", async () => {
    const ses = session((o) => (o.norootlogin = true));
    expect(await check(ses, "root")).toEqual({ result: false, logs: ["root login rejected"] });
  });

  it("-G checks group membership", async () => {
    const root = session((o) => {
      o.restrict_group = "root";
      o.restrict_group_gid = 0;
    });
    expect((await check(root, "root")).result).toBe(true);
    const gid = getgrnam_gid("nogroup");
    if (gid === null) return;
    const other = session((o) => {
      o.restrict_group = "nogroup";
      o.restrict_group_gid = gid;
    });
    expect(await check(other, "root")).toEqual({
      result: false,
      logs: ["Logins are restricted to the group nogroup but user 'root' is not a member"],
    });
  });

  it("ends the session for a NUL in the name or a second name", () => {
    expect(() => checkusername(session(), Buffer.from("ro\0ot"))).toThrow("Attempted username with a null byte");
    const ses = session();
    checkusername(ses, Buffer.from("root"));
    expect(() => checkusername(ses, Buffer.from("daemon"))).toThrow("Client trying multiple usernames");
  });

  it("compares names as bytes, and a name that is not UTF-8 names no account", () => {
    const ses = session();
    expect(checkusername(ses, Buffer.from("root\xff", "latin1"))).toBe(false);
    expect(ses.authstate.pw_name).toBeNull();
    expect(checkusername(ses, Buffer.from("root\xff", "latin1"))).toBe(false);
    // Both decode to "root\ufffd"; Dropbear compares the bytes, and so do we.
    expect(() => checkusername(ses, Buffer.from("root\xfe", "latin1"))).toThrow("Client trying multiple usernames");
  });

  it("a name over 100 bytes just fails, and is not remembered", () => {
    const ses = session();
    expect(checkusername(ses, Buffer.from("r".repeat(101)))).toBe(false);
    expect(ses.authstate.username).toBeNull();
    expect(checkusername(ses, Buffer.from("root"))).toBe(true);
  });
});

describe("recv_msg_userauth_request", () => {
  it("answers 'none' with the method list and no delay", () => {
    const ses = session();
    send(ses, request("root", "none"));
    const [reply] = takePayloads(ses);
    const expected = buf_new(64);
    buf_putbyte(expected, SSH_MSG_USERAUTH_FAILURE);
    buf_putstring(expected, "publickey,password");
    buf_putbyte(expected, 0);
    expect(reply).toEqual(Buffer.from(expected.data.subarray(0, expected.len)));
    expect(svrAuthDelayPending(ses)).toBe(false);
  });

  it("-s offers publickey only and refuses passwords", async () => {
    const ses = session((o) => (o.noauthpass = true));
    send(ses, request("root", "none"));
    expect(takePayloads(ses)[0].subarray(5, 14).toString()).toBe("publickey");
    send(ses, passwordRequest("root", "secret"));
    await afterDelay(ses);
    expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE]);
  });

  it("sends the -b banner once, before the first answer", () => {
    const ses = session((o) => (o.banner = Buffer.from("Authorized use only\n")));
    send(ses, request("root", "none"));
    send(ses, request("root", "none"));
    const replies = takePayloads(ses);
    expect(replies.map((p) => p[0])).toEqual([SSH_MSG_USERAUTH_BANNER, SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_FAILURE]);
    expect(replies[0].subarray(5, 5 + 20).toString()).toBe("Authorized use only\n");
  });

  it("ends the session for another service", () => {
    expect(() => send(session(), request("root", "none", undefined, "ssh-foo"))).toThrow("unknown service in auth");
  });

  it("accepts the right password, with Dropbear's log line", async () => {
    const ses = session();
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = YESCRYPT_SECRET;
    takePayloads(ses);
    const { logs } = await withLogs(() => send(ses, passwordRequest("root", "secret")));
    expect(types(ses)).toEqual([SSH_MSG_USERAUTH_SUCCESS]);
    expect(logs).toEqual(["Password auth succeeded for 'root' from 127.0.0.1:40000"]);
    expect(ses.authstate.authdone).toBe(true);
    // Once in, further requests are ignored.
    send(ses, passwordRequest("root", "secret"));
    expect(types(ses)).toEqual([]);
  });

  it("refuses a wrong password after 250-350 ms, without logging the password", async () => {
    const ses = session();
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = SHA512_SECRET;
    takePayloads(ses);
    const t0 = performance.now();
    const { logs } = await withLogs(async () => {
      send(ses, passwordRequest("root", "hunter2"));
      expect(svrAuthDelayPending(ses)).toBe(true);
      expect(types(ses)).toEqual([]);
      await afterDelay(ses);
    });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(245);
    expect(took).toBeLessThan(1000);
    expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE]);
    expect(ses.authstate.failcount).toBe(1);
    expect(logs).toEqual(["Bad password attempt for 'root' from 127.0.0.1:40000"]);
    expect(logs.join()).not.toContain("hunter2");
  });

  it("refuses over-long passwords, locked and blank hashes, and password changes", async () => {
    const ses = session((o) => (o.maxauthtries = 100));
    send(ses, request("root", "none"));
    takePayloads(ses);
    const attempt = async (hash: string, payload: Buffer) => {
      ses.authstate.pw_passwd = hash;
      const { logs } = await withLogs(async () => {
        send(ses, payload);
        await afterDelay(ses);
      });
      expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE]);
      return logs;
    };
    expect(await attempt(SHA512_SECRET, passwordRequest("root", "x".repeat(101)))).toEqual([
      "Too-long password attempt for 'root' from 127.0.0.1:40000",
    ]);
    expect(await attempt(`!${SHA512_SECRET}`, passwordRequest("root", "secret"))).toEqual([
      "Bad password attempt for 'root' from 127.0.0.1:40000",
    ]);
    expect(await attempt("", passwordRequest("root", ""))).toEqual(["User 'root' has blank password, rejected"]);
    expect(await attempt(SHA512_SECRET, passwordRequest("root", "secret", true))).toEqual([]);
    expect(ses.authstate.failcount).toBe(4);
  });

  it("-B lets a blank password in through 'none', unless -g for root", async () => {
    for (const norootpass of [false, true]) {
      const ses = session((o) => {
        o.allowblankpass = true;
        o.norootpass = norootpass;
      });
      send(ses, request("root", "none"));
      ses.authstate.pw_passwd = "";
      takePayloads(ses);
      const { logs } = await withLogs(() => send(ses, request("root", "none")));
      if (norootpass) {
        expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE]);
      } else {
        expect(types(ses)).toEqual([SSH_MSG_USERAUTH_SUCCESS]);
        expect(logs).toEqual(["Auth succeeded with blank password for 'root' from 127.0.0.1:40000"]);
      }
    }
  });

  it("an unknown user and an unknown method are refused with the same delay", async () => {
    for (const payload of [passwordRequest("no-such-user-dbts", "x"), request("root", "hostbased")]) {
      const ses = session();
      const t0 = performance.now();
      send(ses, payload);
      await afterDelay(ses);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(245);
      expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE]);
    }
  });

  it("holds the transport's reading during the delay, as C's sleep does, and then reads on", async () => {
    const ses = session();
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = SHA512_SECRET;
    takePayloads(ses);
    expect(ses.readheld).toBe(false);
    send(ses, passwordRequest("root", "wrong"));
    expect(ses.readheld).toBe(true);
    await afterDelay(ses);
    expect(ses.readheld).toBe(false);
    send(ses, passwordRequest("root", "secret"));
    expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_SUCCESS]);
    expect(ses.authstate.authdone).toBe(true);
  });

  it("ends the session when the failures exceed -T, after the last delay", async () => {
    const ses = session((o) => (o.maxauthtries = 2));
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = SHA512_SECRET;
    takePayloads(ses);
    for (let i = 0; i < 2; i++) {
      send(ses, passwordRequest("root", "wrong"));
      await afterDelay(ses);
    }
    expect(types(ses)).toEqual([SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_FAILURE]);
    send(ses, passwordRequest("root", "wrong"));
    await delayOver(ses);
    expect(() => svrAuthCheckDelayed(ses)).toThrow(new DropbearExit(1, "Max auth tries reached - user 'root'"));
    // Nothing more is read before the loop handler raises it.
    expect(ses.readheld).toBe(true);
    expect(ses.authstate.failcount).toBe(3);
  });

  it("says 'is invalid' when the user does not exist", async () => {
    const ses = session((o) => (o.maxauthtries = 0));
    send(ses, passwordRequest("no-such-user-dbts", "x"));
    await delayOver(ses);
    expect(() => svrAuthCheckDelayed(ses)).toThrow("Max auth tries reached - user 'is invalid'");
  });

  it("closes the childpipe on success", () => {
    const ses = session((o) => (o.allowblankpass = true));
    const fd = openSync("/dev/null", "r");
    ses.svr_ses.childpipe = fd;
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = "";
    send(ses, request("root", "none"));
    expect(ses.svr_ses.childpipe).toBe(-1);
    expect(() => fstatSync(fd)).toThrow();
    expect(() => closeSync(fd)).toThrow();
  });
});

describe("send_msg_userauth_success", () => {
  it("puts the SUCCESS on the socket before switching user, so the client's next request overlaps the switch", () => {
    const ses = session((o) => (o.allowblankpass = true));
    const written: Buffer[] = [];
    // The transport as write_packet uses it: a gathered write that takes everything.
    const sock = { writev: (iov: Uint8Array[]) => iov.reduce((n, b) => (written.push(Buffer.from(b)), n + b.length), 0) };
    ses.sock_out = sock as unknown as NonNullable<SvrSession["sock_out"]>;
    let atSwitch: number | null = null;
    ses.svr_ses.switch_user = () => {
      atSwitch = Buffer.concat(written).length;
    };
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = "";
    send(ses, request("root", "none"));
    expect(ses.authstate.authdone).toBe(true);
    // The FAILURE of the first request and the SUCCESS were both out when the switch began.
    expect(atSwitch).toBeGreaterThan(0);
    const out = Buffer.concat(written);
    expect(atSwitch).toBe(out.length);
    // In clear here (no keys): length, padding length, then the payload's type byte.
    const types: number[] = [];
    for (let off = 0; off < out.length; off += 4 + out.readUInt32BE(off)) types.push(out[off + 5]!);
    expect(types).toEqual([SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_SUCCESS]);
  });

  it("closes the childpipe before the SUCCESS reaches the socket: the daemon frees the unauthenticated slot first", () => {
    const ses = session((o) => (o.allowblankpass = true));
    const fd = openSync("/dev/null", "r");
    ses.svr_ses.childpipe = fd;
    const pipeAtWrite: number[] = [];
    const sock = {
      writev: (iov: Uint8Array[]) => {
        pipeAtWrite.push(ses.svr_ses.childpipe);
        return iov.reduce((n, b) => n + b.length, 0);
      },
    };
    ses.sock_out = sock as unknown as NonNullable<SvrSession["sock_out"]>;
    ses.svr_ses.switch_user = () => undefined;
    send(ses, request("root", "none"));
    ses.authstate.pw_passwd = "";
    send(ses, request("root", "none"));
    expect(ses.authstate.authdone).toBe(true);
    // One gathered write carried the first request's FAILURE and the SUCCESS: the pipe was
    // closed by then.
    expect(pipeAtWrite).toEqual([-1]);
  });
});

describe("recv_msg_service_request", () => {
  const service = (name: string) => {
    const b = buf_new(64);
    buf_putbyte(b, SSH_MSG_SERVICE_REQUEST);
    buf_putstring(b, name);
    return Buffer.from(b.data.subarray(0, b.len));
  };

  it("accepts ssh-userauth, and ssh-connection only after auth", () => {
    const ses = session();
    deliver(ses, service("ssh-userauth"), recv_msg_service_request);
    expect(takePayloads(ses)).toEqual([Buffer.concat([Buffer.from([SSH_MSG_SERVICE_ACCEPT, 0, 0, 0, 12]), Buffer.from("ssh-userauth")])]);
    expect(() => deliver(ses, service("ssh-connection"), recv_msg_service_request)).toThrow("Request for connection before auth");
    ses.authstate.authdone = true;
    deliver(ses, service("ssh-connection"), recv_msg_service_request);
    expect(types(ses)).toEqual([SSH_MSG_SERVICE_ACCEPT]);
    expect(() => deliver(ses, service("ssh-agent"), recv_msg_service_request)).toThrow("Unrecognised SSH_MSG_SERVICE_REQUEST");
  });
});

describe.runIf(isRoot)("svr_switch_user", () => {
  // In a child process: it changes the whole process's ids.
  const script = (uid: number, gid: number, name: string, asUid?: number) => `
    import { SvrSession, cli_runopts, runopts, svr_runopts } from "@dropbear-ts/core";
    import { svr_switch_user } from "@dropbear-ts/auth";
    ${asUid !== undefined ? `process.setgid(${asUid}); process.setuid(${asUid});` : ""}
    const ses = new SvrSession(new runopts(), new svr_runopts());
    Object.assign(ses.authstate, { authdone: true, pw_uid: ${uid}, pw_gid: ${gid}, pw_name: "${name}" });
    try {
      svr_switch_user(ses);
      console.log(JSON.stringify({ uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), groups: process.getgroups() }));
    } catch (e) { console.log(JSON.stringify({ exit: e.exitmsg })); }
  `;
  const run = (src: string) =>
    JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", src], { cwd: fileURLToPath(new URL(".", import.meta.url)), encoding: "utf8" }));

  it("drops to the user's uid, gid and groups", () => {
    const nobody = getpwnam("nobody");
    if (nobody === null) return;
    const r = run(script(nobody.pw_uid, nobody.pw_gid, "nobody"));
    expect(r).toEqual({ uid: nobody.pw_uid, euid: nobody.pw_uid, gid: nobody.pw_gid, groups: [nobody.pw_gid] });
  });

  it("as non-root only the server's own user can go on", () => {
    expect(run(script(4242, 4242, "x", 4242)).uid).toBe(4242);
    expect(run(script(4343, 4343, "x", 4242))).toEqual({ exit: "Couldn't\tchange user as non-root" });
  });
});
