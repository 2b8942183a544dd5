import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { connect } from "dropbear-ts";
import { IS_ROOT, PEERS, itAsRoot } from "./helpers/peers.js";
import { OURS, freePort, homeWithKnownHosts, opensshKeygen, publicKeyLine, run, runBytes, scratch, terminate, waitPort } from "./helpers/servers.js";
import { addTestUser, removeTestUser } from "./helpers/users.js";

// ProFTPD's mod_sftp (Debian's proftpd-core with proftpd-mod-crypto, 1.3.8) as the server of
// our dbclient: an SSH server of its own, written for file transfer only. It serves SFTP and
// scp, and refuses any other command: it answers the exec with CHANNEL_FAILURE, then sends an
// exit-status of 0 and closes the channel. It reads authorized keys only in RFC 4716's format.

const USER = "dbtsproftpd";
const PASSWORD = "proftpd-interop-pw-2";
const work = scratch("dbts-proftpd-");
const tools = ["proftpd", "mod_sftp.so", "sftp", "scp", "ssh-keygen"] as const;
let daemon: ChildProcess | null = null;
let port = 0;
let key = "";
let home = "";
let knownHome = "";
let log = "";

/** Our dbclient against mod_sftp as USER, with the key, the host key checked against known_hosts. */
function dbclient(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runBytes(process.execPath, [OURS.dbclient, "-i", key, "-p", String(port), `${USER}@127.0.0.1`, ...args], { env: { HOME: knownHome, ...env } });
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  ({ home } = addTestUser(USER, { password: PASSWORD }));
  key = opensshKeygen(join(work.dir, "id_ed25519"));
  const rfc4716 = spawnSync(PEERS["ssh-keygen"], ["-e", "-f", `${key}.pub`], { encoding: "utf8" });
  writeFileSync(join(work.dir, "authorized_keys"), rfc4716.stdout);
  const hostKey = opensshKeygen(join(work.dir, "hk_ed25519"));
  knownHome = homeWithKnownHosts(work.dir, "client", []);
  port = await freePort();
  writeFileSync(join(knownHome, ".ssh", "known_hosts"), `[127.0.0.1]:${port} ${publicKeyLine(`${hostKey}.pub`)}\n`);
  const conf = join(work.dir, "proftpd.conf");
  writeFileSync(conf, [
    `ModulePath ${PEERS["mod_sftp.so"].replace(/\/[^/]*$/, "")}`,
    "LoadModule mod_sftp.c",
    "ServerType standalone",
    "DefaultServer on",
    "UseIPv6 off",
    "DefaultAddress 127.0.0.1",
    "SocketBindTight on",
    `Port ${port}`,
    "User root",
    "Group root",
    `ScoreboardFile ${join(work.dir, "scoreboard")}`,
    `PidFile ${join(work.dir, "proftpd.pid")}`,
    "DelayTable none",
    "WtmpLog off",
    "UseReverseDNS off",
    "SFTPEngine on",
    `SFTPHostKey ${hostKey}`,
    `SFTPAuthorizedUserKeys file:${join(work.dir, "authorized_keys")}`,
    "SFTPAuthMethods publickey password",
    "<Directory />",
    "  AllowOverwrite on",
    "</Directory>",
    "",
  ].join("\n"));
  daemon = spawn(PEERS.proftpd, ["-n", "-q", "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  daemon.stdout!.on("data", (d: Buffer) => (log += d.toString()));
  daemon.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  await waitPort(port, daemon, () => log);
}, 60_000);

afterAll(async () => {
  if (daemon) await terminate(daemon);
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
});

describe("our dbclient against ProFTPD's mod_sftp", () => {
  itAsRoot([...tools], "the host key from known_hosts, a key and a password; sftp -S dbclient and scp -O -S dbclient: 3 MB up and back down intact", async () => {
    // sftp -S and scp -S run a program with their own arguments: a wrapper adds ours.
    const dbc = join(work.dir, "dbc");
    writeFileSync(dbc, `#!/bin/sh\nexec "${process.execPath}" "${OURS.dbclient}" -i "${key}" "$@"\n`, { mode: 0o755 });
    const data = randomBytes(3_000_000);
    const local = join(work.dir, "up.bin");
    writeFileSync(local, data);
    const batch = join(work.dir, "batch");
    writeFileSync(batch, `put ${local} sftp.bin\nget sftp.bin ${local}.sftp\n`);
    const env = { env: { ...process.env, HOME: knownHome } };
    const s = await run(PEERS.sftp, ["-S", dbc, "-P", String(port), "-b", batch, `${USER}@127.0.0.1`], env);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stderr).not.toMatch(/Caution|skipping/);
    expect(readFileSync(join(home, "sftp.bin")).equals(data)).toBe(true);
    expect(readFileSync(`${local}.sftp`).equals(data)).toBe(true);
    const up = await run(PEERS.scp, ["-O", "-S", dbc, "-P", String(port), local, `${USER}@127.0.0.1:scp.bin`], env);
    expect(up.status, up.stderr).toBe(0);
    const down = await run(PEERS.scp, ["-O", "-S", dbc, "-P", String(port), `${USER}@127.0.0.1:scp.bin`, `${local}.scp`], env);
    expect(down.status, down.stderr).toBe(0);
    expect(readFileSync(`${local}.scp`).equals(data)).toBe(true);
    // The password, the key left out of mod_sftp's file.
    writeFileSync(join(work.dir, "authorized_keys"), "");
    const pw = await dbclient(["-s", "sftp"], { DROPBEAR_PASSWORD: PASSWORD });
    expect(pw.status, pw.err).toBe(0);
  }, 60_000);

  itAsRoot([...tools], "a command it does not run: 'exec request failed', status 1, though it then sends exit-status 0; the library's exec rejects", async () => {
    const r = await dbclient(["id"], { DROPBEAR_PASSWORD: PASSWORD });
    expect(r.err).toContain("exec request failed on channel 0");
    expect(r.status).toBe(1);
    const client = await connect({ host: "127.0.0.1", port, username: USER, password: PASSWORD, hostKey: { knownHostsPath: join(knownHome, ".ssh", "known_hosts") } });
    try {
      const exec = client.exec("id");
      exec.stdin.end();
      await expect(exec.exit).rejects.toThrow("exec request refused by the server");
    } finally {
      await client.end();
    }
  });
});
