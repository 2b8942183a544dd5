import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { buf_new, buf_putbyte, buf_putint, buf_putstring } from "@dropbear-ts/buffer";
import {
  AUTH_TYPE_INTERACT,
  AUTH_TYPE_PASSWORD,
  AUTH_TYPE_PUBKEY,
  cli_state,
  type CliSession,
  type SvrSession,
  type sshsession,
} from "@dropbear-ts/core";
import { dropbear_nocipher } from "@dropbear-ts/crypto";
import { DropbearExit, list_append } from "@dropbear-ts/dbutil";
import {
  SSH_MSG_SERVICE_REQUEST,
  SSH_MSG_USERAUTH_BANNER,
  SSH_MSG_USERAUTH_FAILURE,
  SSH_MSG_USERAUTH_INFO_REQUEST,
  SSH_MSG_USERAUTH_INFO_RESPONSE,
  SSH_MSG_USERAUTH_REQUEST,
  SSH_MSG_USERAUTH_SPECIFIC_60,
  SSH_MSG_USERAUTH_SUCCESS,
} from "@dropbear-ts/options";
import {
  DROPBEAR_SIGNKEY_ECDSA_NISTP256,
  DROPBEAR_SIGNKEY_ED25519,
  DROPBEAR_SIGNKEY_RSA,
  KEYFILE_DROPBEAR,
  import_write,
  signkeyGenerateKey,
  signkeyPubBlob,
  signkeyPubLine,
  type sign_key,
} from "@dropbear-ts/signkey";
import {
  cliAuthHooks,
  cli_auth_getmethods,
  cli_auth_try,
  recv_msg_service_request,
  recv_msg_userauth_banner,
  recv_msg_userauth_failure,
  recv_msg_userauth_request,
  recv_msg_userauth_specific_60,
  recv_msg_userauth_success,
  svrAuthCheckDelayed,
  svr_authinitialise,
} from "../src/index.js";
import { delayOver, deliver, newCliSession, newSvrSession, pair, takePayloads, withLogs } from "./harness.js";

const SHA512_SECRET = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";

const svrHandlers: Record<number, (ses: SvrSession) => void> = {
  [SSH_MSG_USERAUTH_REQUEST]: recv_msg_userauth_request,
  [SSH_MSG_SERVICE_REQUEST]: recv_msg_service_request,
};
const cliHandlers: Record<number, (ses: CliSession) => void> = {
  [SSH_MSG_USERAUTH_FAILURE]: recv_msg_userauth_failure,
  [SSH_MSG_USERAUTH_SUCCESS]: recv_msg_userauth_success,
  [SSH_MSG_USERAUTH_BANNER]: recv_msg_userauth_banner,
  [SSH_MSG_USERAUTH_SPECIFIC_60]: recv_msg_userauth_specific_60,
};

function pump<S extends sshsession>(from: sshsession, to: S, handlers: Record<number, (ses: S) => void>): number {
  const payloads = takePayloads(from);
  for (const p of payloads) {
    const h = handlers[p[0]];
    if (h === undefined) throw new Error(`no handler for ${p[0]}`);
    deliver(to, p, h);
  }
  return payloads.length;
}

/**
 * Drive both sides as cli_sessionloop and the server loop would, until the client is in or
 * something ends. Returns the server's log lines.
 */
async function authenticate(cli: CliSession, svr: SvrSession): Promise<string[]> {
  const { logs } = await withLogs(async () => {
    pair(svr, cli);
    cli_auth_getmethods(cli);
    cli.cli_ses.state = cli_state.USERAUTH_REQ_SENT;
    for (let step = 0; step < 100; step++) {
      pump(cli, svr, svrHandlers);
      await delayOver(svr);
      svrAuthCheckDelayed(svr);
      pump(svr, cli, cliHandlers);
      const state = cli.cli_ses.state as cli_state;
      if (state === cli_state.USERAUTH_SUCCESS_RCVD) {
        return;
      }
      if (state === cli_state.USERAUTH_FAIL_RCVD) {
        if (!cli_auth_try(cli)) {
          throw new DropbearExit(1, "No auth methods could be used.");
        }
        cli.cli_ses.state = cli_state.USERAUTH_REQ_SENT;
      }
    }
    throw new Error("auth did not finish");
  });
  return logs;
}

let dir: string;
let home: string;
const keys: Record<string, sign_key> = {};
const files: Record<string, string> = {};

function keyFile(name: string, key: sign_key): string {
  const f = join(dir, name);
  import_write(f, key, null, KEYFILE_DROPBEAR);
  keys[name] = key;
  files[name] = f;
  return f;
}

function sshKeygen(name: string, type: string, passphrase: string): string {
  const f = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", type, "-N", passphrase, "-f", f, "-C", name]);
  files[name] = f;
  return f;
}

function authorize(...lines: string[]): void {
  writeFileSync(join(home, ".ssh", "authorized_keys"), lines.join("\n") + "\n");
}

const pubOf = (f: string) => execFileSync("ssh-keygen", ["-y", "-P", "", "-f", f], { encoding: "utf8" }).trim();

function server(setup?: Parameters<typeof newSvrSession>[0]): SvrSession {
  const svr = newSvrSession(setup);
  svr_authinitialise(svr);
  // As fill_passwd would have it for a user whose home is our temporary directory.
  Object.assign(svr.authstate, {
    username: "root",
    username_sent: Buffer.from("root"),
    pw_name: "root",
    pw_uid: 0,
    pw_gid: 0,
    pw_dir: home,
    pw_shell: "/bin/sh",
    pw_passwd: SHA512_SECRET,
  });
  return svr;
}

function client(privkeys: string[], setup?: Parameters<typeof newCliSession>[0]): CliSession {
  const cli = newCliSession(setup);
  for (const f of privkeys) list_append(cli.cli_ses.cli_opts.privkeys, f);
  cli.cli_ses.server_sig_algs = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"];
  return cli;
}

const savedEnv = { DROPBEAR_PASSWORD: process.env.DROPBEAR_PASSWORD, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK };
const savedHooks = { ...cliAuthHooks };
let stderr = "";

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dbts-cli-"));
  home = join(dir, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o755);
  chmodSync(dir, 0o755);
  keyFile("id_ed25519_db", signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0));
  keyFile("id_ecdsa_db", signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256));
  keyFile("id_rsa_db", signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 2048));
  sshKeygen("id_ossh", "ed25519", "");
  sshKeygen("id_ossh_enc", "ed25519", "open sesame");
  sshKeygen("id_ossh_rsa", "rsa", "");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  Object.assign(cliAuthHooks, savedHooks);
  vi.restoreAllMocks();
});

function captureStderr(): void {
  stderr = "";
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
}

describe("client publickey auth", () => {
  it("signs with a Dropbear-format key the server lists", async () => {
    authorize(signkeyPubLine(keys.id_ed25519_db));
    const cli = client([files.id_ecdsa_db, files.id_ed25519_db]);
    const svr = server();
    const logs = await authenticate(cli, svr);
    expect(svr.authstate.authdone && cli.authstate.authdone).toBe(true);
    expect(cli.cli_ses.is_trivial_auth).toBe(false);
    expect(logs.some((l) => l.startsWith("Pubkey auth succeeded for 'root' with ssh-ed25519 key SHA256:"))).toBe(true);
    // The refused ECDSA key cost no failure.
    expect(svr.authstate.failcount).toBe(0);
  });

  it("uses OpenSSH-format keys (beyond Dropbear)", async () => {
    authorize(pubOf(files.id_ossh));
    const svr = server();
    await authenticate(client([files.id_ossh]), svr);
    expect(svr.authstate.authdone).toBe(true);
  });

  it("asks for an encrypted key's passphrase only once the server would take the key", async () => {
    const asked: string[] = [];
    cliAuthHooks.getpass = (prompt) => {
      asked.push(prompt);
      return Buffer.from("open sesame");
    };
    authorize(signkeyPubLine(keys.id_ed25519_db));
    // Not listed: no prompt; then falls to password (DROPBEAR_PASSWORD).
    process.env.DROPBEAR_PASSWORD = "secret";
    const svr1 = server();
    await authenticate(client([files.id_ossh_enc]), svr1);
    expect(asked).toEqual([]);
    expect(svr1.authstate.authdone).toBe(true);

    authorize(execFileSync("ssh-keygen", ["-y", "-P", "open sesame", "-f", files.id_ossh_enc], { encoding: "utf8" }).trim());
    delete process.env.DROPBEAR_PASSWORD;
    const svr2 = server();
    const logs = await authenticate(client([files.id_ossh_enc]), svr2);
    expect(asked).toEqual([`Enter passphrase for key '${files.id_ossh_enc}': `]);
    expect(logs.some((l) => l.startsWith("Pubkey auth succeeded"))).toBe(true);
  });

  it("a wrong passphrase drops the key and auth moves on", async () => {
    cliAuthHooks.getpass = (prompt) => Buffer.from(prompt.startsWith("Enter passphrase") ? "wrong" : "secret");
    authorize(execFileSync("ssh-keygen", ["-y", "-P", "open sesame", "-f", files.id_ossh_enc], { encoding: "utf8" }).trim());
    captureStderr();
    const svr = server();
    const logs = await authenticate(client([files.id_ossh_enc]), svr);
    expect(logs).toContain("Password auth succeeded for 'root' from 127.0.0.1:40000");
  });

  it("RSA: rsa-sha2-256 or rsa-sha2-512, whichever is listed, skipped with no server-sig-algs", async () => {
    authorize(signkeyPubLine(keys.id_rsa_db), pubOf(files.id_ossh_rsa));
    for (const algs of [["rsa-sha2-256"], ["rsa-sha2-512"], ["rsa-sha2-256", "rsa-sha2-512"]]) {
      const cli = client([files.id_rsa_db]);
      cli.cli_ses.server_sig_algs = algs;
      const svr = server();
      await authenticate(cli, svr);
      expect(svr.authstate.authdone).toBe(true);
    }
    const cli = client([files.id_ossh_rsa]);
    cli.cli_ses.server_sig_algs = null;
    cli.cli_ses.cli_opts.password_authentication = false;
    await expect(authenticate(cli, server())).rejects.toThrow("No auth methods could be used.");
  });

  it("drops keys server-sig-algs does not list", async () => {
    authorize(signkeyPubLine(keys.id_ed25519_db));
    const cli = client([files.id_ed25519_db]);
    cli.cli_ses.server_sig_algs = ["rsa-sha2-256"];
    cli.cli_ses.cli_opts.password_authentication = false;
    await expect(authenticate(cli, server())).rejects.toThrow("No auth methods could be used.");
  });

  it("warns about a file that is not a key", async () => {
    const junk = join(dir, "junk");
    writeFileSync(junk, "not a key at all\n");
    authorize(signkeyPubLine(keys.id_ed25519_db));
    const cli = client([junk, files.id_ed25519_db]);
    const logs = await authenticate(cli, server());
    expect(logs).toContain(`Failed loading keyfile '${junk}'\n`);
  });

  it("skips an RSA key too large for Dropbear's key buffers with a warning, and goes on with the next", async () => {
    // 4800 bits: over MAX_PUBKEY_SIZE (600 bytes). A PEM file made once for this test (making
    // such a key took from 2 s to over 30 on a busy machine).
    const big = join(dir, "id_rsa_4800");
    writeFileSync(big, readFileSync(new URL("./fixtures/id_rsa_4800.pem", import.meta.url)), { mode: 0o600 });
    authorize(pubOf(big), signkeyPubLine(keys.id_ed25519_db));
    const cli = client([big, files.id_ed25519_db]);
    const svr = server();
    const logs = await authenticate(cli, svr);
    expect(logs).toContain(`Skipping key '${big}': RSA key too large`);
    expect(svr.authstate.authdone).toBe(true);
  }, 30_000);

  it("skips keys whose numbers cannot sign with a warning, and goes on with the next", async () => {
    // Made by hand or damaged: Dropbear would sign with them and the session end (or the
    // server refuse the signature); the warning names the file and what is wrong.
    const rsa = signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1024);
    rsa.rsakey!.q = rsa.rsakey!.p;
    // A prime one bit off, so even: OpenSSL took the key and then refused every signature,
    // and the session ended with "RSA error".
    const evenPrime = signkeyGenerateKey(DROPBEAR_SIGNKEY_RSA, 1024);
    evenPrime.rsakey!.p = evenPrime.rsakey!.p! + 1n;
    const ecdsa = signkeyGenerateKey(DROPBEAR_SIGNKEY_ECDSA_NISTP256, 256);
    ecdsa.ecckey256!.k = ecdsa.ecckey256!.dp.order;
    const badRsa = keyFile("id_rsa_equal_primes", rsa);
    const badEc = keyFile("id_ecdsa_k_order", ecdsa);
    const badEven = keyFile("id_rsa_even_prime", evenPrime);
    authorize(signkeyPubLine(rsa), signkeyPubLine(evenPrime), signkeyPubLine(ecdsa), signkeyPubLine(keys.id_ed25519_db));
    const cli = client([badRsa, badEven, badEc, files.id_ed25519_db]);
    const svr = server();
    const logs = await authenticate(cli, svr);
    expect(logs).toContain(`Skipping key '${badRsa}': ssh-rsa: bad RSA primes`);
    expect(logs).toContain(`Skipping key '${badEven}': ssh-rsa: bad RSA primes`);
    expect(logs).toContain(`Skipping key '${badEc}': ecdsa-sha2-nistp256: private value out of range`);
    expect(svr.authstate.authdone).toBe(true);
  });
});

describe("client agent keys", () => {
  // The agent calls live in the agentfwd package (its tests sign through a real ssh-agent);
  // auth reaches them only through ses.cli_ses.agent, which the client program installs.
  it("are not asked for when no agent calls are installed, even with SSH_AUTH_SOCK set", async () => {
    authorize(signkeyPubLine(keys.id_ed25519_db));
    process.env.SSH_AUTH_SOCK = join(dir, "no-such-agent.sock");
    const cli = client([files.id_ed25519_db]);
    expect(cli.cli_ses.agent).toBeNull();
    const svr = server();
    await authenticate(cli, svr);
    expect(svr.authstate.authdone).toBe(true);
    expect(cli.cli_ses.cli_opts.agent_fd).toBe(-1);
  });
});

describe("client password auth", () => {
  it("takes the password from DROPBEAR_PASSWORD, once: the variable is burnt after it, as C's m_burn leaves it", async () => {
    process.env.DROPBEAR_PASSWORD = "secret";
    const svr = server();
    const logs = await authenticate(client([]), svr);
    expect(logs).toEqual(["Password auth succeeded for 'root' from 127.0.0.1:40000"]);
    expect(process.env.DROPBEAR_PASSWORD).toBe("");
  });

  it("prompts user@host's password: without echo", async () => {
    const asked: string[] = [];
    cliAuthHooks.getpass = (p) => {
      asked.push(p);
      return Buffer.from("secret");
    };
    await authenticate(client([]), server());
    expect(asked).toEqual(["root@testhost's password: "]);
  });

  it("a ^C or no terminal ends the client", async () => {
    cliAuthHooks.getpass = () => Buffer.from("abc\x03");
    await expect(authenticate(client([]), server())).rejects.toThrow(new DropbearExit(0, "Interrupted.", "EAUTH"));
    cliAuthHooks.getpass = () => null;
    await expect(authenticate(client([]), server())).rejects.toThrow("Interrupted.");
  });

  it("keeps asking until the server gives up", async () => {
    process.env.DROPBEAR_PASSWORD = "wrong";
    const svr = server((o) => (o.maxauthtries = 1));
    await expect(authenticate(client([]), svr)).rejects.toThrow("Max auth tries reached - user 'root'");
  });

  it("BatchMode without DROPBEAR_PASSWORD, or PasswordAuthentication=no, leaves no method", async () => {
    await expect(authenticate(client([], (o) => (o.batch_mode = true)), server())).rejects.toThrow("No auth methods could be used.");
    await expect(authenticate(client([], (o) => (o.password_authentication = false)), server())).rejects.toThrow(
      "No auth methods could be used.",
    );
    process.env.DROPBEAR_PASSWORD = "secret";
    const svr = server();
    await authenticate(client([], (o) => (o.batch_mode = true)), svr);
    expect(svr.authstate.authdone).toBe(true);
  });

  it("is not used over an unencrypted transport", async () => {
    process.env.DROPBEAR_PASSWORD = "secret";
    captureStderr();
    const cli = client([]);
    cli.keys.trans.algo_crypt = dropbear_nocipher;
    await expect(authenticate(cli, server())).rejects.toThrow("No auth methods could be used.");
    expect(stderr).toBe("Sorry, I won't let you use password auth unencrypted.\n");
  });
});

describe("client odds and ends", () => {
  it("DisableTrivialAuth refuses a server that lets us in without proof", async () => {
    const svr = server((o) => (o.allowblankpass = true));
    svr.authstate.pw_passwd = "";
    await expect(authenticate(client([], (o) => (o.disable_trivial_auth = true)), svr)).rejects.toThrow(
      "trivial authentication not allowed",
    );
    const svr2 = server((o) => (o.allowblankpass = true));
    svr2.authstate.pw_passwd = "";
    await authenticate(client([]), svr2);
  });

  it("shows a cleaned banner, at most 20 lines, unless -q", async () => {
    captureStderr();
    const banner = Buffer.concat([Buffer.from("Welcome\x1b[31m\r\n"), Buffer.from(Array.from({ length: 25 }, (_, i) => `line ${i}\n`).join(""))]);
    process.env.DROPBEAR_PASSWORD = "secret";
    await authenticate(client([]), server((o) => (o.banner = banner)));
    expect(stderr).toBe(
      `Welcome[31m\n${Array.from({ length: 19 }, (_, i) => `line ${i}`).join("\n")}\n[Banner from the server is too long]\n`,
    );
    stderr = "";
    // Burnt by its first use, as C burns it: set again for this second client.
    process.env.DROPBEAR_PASSWORD = "secret";
    await authenticate(client([], (o) => (o.quiet = true)), server((o) => (o.banner = banner)));
    expect(stderr).toBe("");
  });

  it("answers keyboard-interactive prompts", () => {
    captureStderr();
    cliAuthHooks.getpass = (p) => (p === "Password: " ? Buffer.from("pw") : null);
    cliAuthHooks.getline = () => Buffer.from("123456\n");
    const cli = client([]);
    cli.authstate.authtypes = AUTH_TYPE_INTERACT;
    expect(cli_auth_try(cli)).toBe(true);
    const [req] = takePayloads(cli);
    expect(req.subarray(1).toString("latin1")).toContain("keyboard-interactive");

    const b = buf_new(512);
    buf_putbyte(b, SSH_MSG_USERAUTH_INFO_REQUEST);
    buf_putstring(b, "Two factor\n");
    buf_putstring(b, "Answer both.\n");
    buf_putstring(b, "");
    buf_putint(b, 2);
    buf_putstring(b, "Password: ");
    buf_putbyte(b, 0);
    // sshd puts PAM's messages in the prompt's text, each line ended.
    buf_putstring(b, "Check your phone.\r\nCode: ");
    buf_putbyte(b, 1);
    deliver(cli, Buffer.from(b.data.subarray(0, b.len)), recv_msg_userauth_specific_60);
    const [resp] = takePayloads(cli);
    const expected = buf_new(64);
    buf_putbyte(expected, SSH_MSG_USERAUTH_INFO_RESPONSE);
    buf_putint(expected, 2);
    buf_putstring(expected, "pw");
    buf_putstring(expected, "123456");
    expect(resp).toEqual(Buffer.from(expected.data.subarray(0, expected.len)));
    // Name and instruction each on a line, a prompt's line ends kept (C drops every one of
    // them: "Two factorAnswer both.Check your phone.Code: "); the \r is not shown.
    expect(stderr).toBe("Login for root@testhost\nTwo factor\nAnswer both.\nCheck your phone.\nCode: ");
    expect(cli.cli_ses.is_trivial_auth).toBe(false);
  });

  it("refuses too many keyboard-interactive prompts", () => {
    captureStderr();
    const cli = client([]);
    cli.cli_ses.lastauthtype = AUTH_TYPE_INTERACT;
    const b = buf_new(64);
    buf_putbyte(b, SSH_MSG_USERAUTH_INFO_REQUEST);
    buf_putstring(b, "");
    buf_putstring(b, "");
    buf_putstring(b, "");
    buf_putint(b, 80);
    expect(() => deliver(cli, Buffer.from(b.data.subarray(0, b.len)), recv_msg_userauth_specific_60)).toThrow(
      "Too many prompts received for keyboard-interactive",
    );
  });

  it("message 60 after a password attempt means the password expired", () => {
    const cli = client([]);
    cli.cli_ses.lastauthtype = AUTH_TYPE_PASSWORD;
    expect(() => deliver(cli, Buffer.from([SSH_MSG_USERAUTH_SPECIFIC_60]), recv_msg_userauth_specific_60)).toThrow(
      new DropbearExit(0, "Your password has expired.", "EAUTH"),
    );
    cli.cli_ses.lastauthtype = 0;
    expect(() => deliver(cli, Buffer.from([SSH_MSG_USERAUTH_SPECIFIC_60]), recv_msg_userauth_specific_60)).toThrow(
      "Unexpected userauth packet",
    );
  });

  it("a PK_OK for a key we never offered ends the client (C waits for ever)", () => {
    const cli = client([files.id_ed25519_db]);
    cli.cli_ses.lastauthtype = AUTH_TYPE_PUBKEY;
    const b = buf_new(256);
    buf_putbyte(b, SSH_MSG_USERAUTH_SPECIFIC_60);
    buf_putstring(b, "ssh-ed25519");
    buf_putstring(b, signkeyPubBlob(signkeyGenerateKey(DROPBEAR_SIGNKEY_ED25519, 0)));
    expect(() => deliver(cli, Buffer.from(b.data.subarray(0, b.len)), recv_msg_userauth_specific_60)).toThrow(
      "Bad pk_ok: not a key we offered",
    );
  });

  it("a failure nobody asked for ends the client", () => {
    const cli = client([]);
    const b = buf_new(64);
    buf_putbyte(b, SSH_MSG_USERAUTH_FAILURE);
    buf_putstring(b, "password");
    buf_putbyte(b, 0);
    expect(() => deliver(cli, Buffer.from(b.data.subarray(0, b.len)), recv_msg_userauth_failure)).toThrow(
      "Unexpected userauth failure",
    );
  });
});
