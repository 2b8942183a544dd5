import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { itAsRoot } from "./helpers/peers.js";
import { freePort, ourKeygen, OURS, run, scratch, type Server, startOurDropbearWithHostKey, waitPort } from "./helpers/servers.js";
import { echoRoundTrip, startEchoTarget, startTunnel } from "./helpers/tunnel.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Issue 9: dbclient reads ~/.ssh/config (cli-readconf.c, OpenSSH's matching rules): a Host
// alias with HostName, Port, User and IdentityFile connects; ProxyJump in the file becomes
// multihop; flags win.

const USER = "dbtsconf";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-conf-");
const home = join(work.dir, "home");
let key = "";
let ours: Server;

const itConf = (title: string, fn: () => Promise<void>, timeout?: number): void => itAsRoot([], title, fn, timeout);

beforeAll(async () => {
  if (!isRoot) return;
  const user = addTestUser(USER);
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  // Not in ~/.ssh/id_dropbear: only the config's IdentityFile can find it.
  key = join(work.dir, "conf_key");
  ourKeygen(key);
  authorizeKeys(user, `${key}.pub`);
  ours = await startOurDropbearWithHostKey(work.dir);
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
}, 60_000);

function writeConfig(text: string): void {
  writeFileSync(join(home, ".ssh", "config"), text);
}

describe("~/.ssh/config end to end", () => {
  itConf("a Host alias with HostName, Port, User and IdentityFile connects", async () => {
    writeConfig(`# ours\nHost myalias\n  HostName 127.0.0.1\n  Port ${ours.port}\n  User ${USER}\n  IdentityFile ${key}\n  AddKeysToAgent no\n`);
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "myalias", "echo $USER; exit 4"], { env: { HOME: home } });
    expect(r.stdout).toBe(`${USER}\n`);
    expect(r.status).toBe(4);
    // The unsupported keyword in our section is named, not silently dropped.
    expect(r.stderr).toMatch(/Ignoring unsupported option AddKeysToAgent/);
  });

  itConf("LocalForward and RemoteForward lines in the file are -L and -R: data goes both ways through each", async () => {
    const echo = await startEchoTarget();
    const [lport, rport] = [await freePort(), await freePort()];
    writeConfig(`Host myalias\n  HostName 127.0.0.1\n  Port ${ours.port}\n  User ${USER}\n  IdentityFile ${key}\n  LocalForward 127.0.0.1:${lport} 127.0.0.1:${echo.port}\n  RemoteForward ${rport} 127.0.0.1:${echo.port}\n`);
    const t = await startTunnel(process.execPath, [OURS.dbclient, "-N", "-y", "-y", "myalias"], lport, { HOME: home });
    try {
      await waitPort(rport, t.child, t.log);
      for (const port of [lport, rport]) {
        const r = await echoRoundTrip(port, 100_000);
        expect(r.got, t.log()).toBe(100_000);
        expect(r.gotHash).toBe(r.sentHash);
      }
      expect(t.log()).not.toMatch(/Ignoring/);
    } finally {
      await t.stop();
      await echo.close();
    }
  });

  itConf("StrictHostKeyChecking accept-new and UserKnownHostsFile in the file: no -y, the key recorded in that file, then checked", async () => {
    const kh = join(work.dir, "conf_known_hosts");
    rmSync(kh, { force: true });
    writeConfig(`Host myalias\n  HostName 127.0.0.1\n  Port ${ours.port}\n  User ${USER}\n  IdentityFile ${key}\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile ${kh}\n  BatchMode yes\n`);
    for (const word of ["first", "second"]) {
      const r = await run(process.execPath, [OURS.dbclient, "myalias", `echo ${word}`], { env: { HOME: home } });
      expect(r.stdout, r.stderr).toBe(`${word}\n`);
      expect(r.stderr).not.toMatch(/Ignoring/);
    }
    expect(readFileSync(kh, "utf8")).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${ours.port} ssh-`));
    // Another key on record for the host: refused, accept-new or not.
    writeFileSync(kh, `[127.0.0.1]:${ours.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n`);
    const r = await run(process.execPath, [OURS.dbclient, "myalias", "echo third"], { env: { HOME: home } });
    expect(r.stdout).toBe("");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/host key mismatch for 127\.0\.0\.1 !/);
  });

  itConf("UTF-8 in the file is UTF-8: an IdentityFile named \"clé\" is found, a ProxyCommand's \"é\" reaches the shell as written", async () => {
    const utf8Key = join(work.dir, "clé");
    writeFileSync(utf8Key, readFileSync(key));
    const seen = join(work.dir, "pc-é");
    writeConfig(`Host myalias\n  HostName 127.0.0.1\n  Port ${ours.port}\n  User ${USER}\n  IdentityFile ${utf8Key}\n  ProxyCommand sh -c 'echo é > "$1"; exec "$0" "$2" -y -y -i "$3" -p ${ours.port} -B 127.0.0.1:${ours.port} ${USER}@127.0.0.1' ${process.execPath} ${seen} ${OURS.dbclient} ${utf8Key}\n`);
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "myalias", "echo via-utf8"], { env: { HOME: home } });
    expect(r.stdout, r.stderr).toBe("via-utf8\n");
    expect(readFileSync(seen, "utf8")).toBe("é\n");
  });

  itConf("flags win: -p on the command line beats the file's Port", async () => {
    writeConfig(`Host myalias\n  HostName 127.0.0.1\n  Port 1\n  User ${USER}\n  IdentityFile ${key}\n`);
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-p", String(ours.port), "myalias", "echo flag-port"], { env: { HOME: home } });
    expect(r.stdout).toBe("flag-port\n");
    expect(r.status).toBe(0);
  });

  itConf("a host in an Include'd file, its values with trailing comments, -o Port over the file's Port", async () => {
    mkdirSync(join(home, ".ssh", "conf.d"), { recursive: true });
    writeFileSync(join(home, ".ssh", "conf.d", "lab.conf"), `Host incalias # the lab box\n  HostName 127.0.0.1 # loopback\n  Port 1 # wrong\n  User ${USER} # me\n  IdentityFile "${key}"\n`);
    writeConfig("Include conf.d/*.conf\n");
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-o", `Port=${ours.port}`, "incalias", "echo via-include"], { env: { HOME: home } });
    expect(r.stdout, r.stderr).toBe("via-include\n");
    expect(r.stderr).not.toMatch(/Ignoring/);
  });

  itConf("-o ProxyCommand=none connects directly over the file's ProxyCommand, as ssh", async () => {
    writeConfig(`Host myalias\n  HostName 127.0.0.1\n  Port ${ours.port}\n  User ${USER}\n  IdentityFile ${key}\n  ProxyCommand /no/such/proxy %h %p\n`);
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-o", "ProxyCommand=none", "myalias", "echo direct"], { env: { HOME: home } });
    expect(r.stdout, r.stderr).toBe("direct\n");
    expect(r.status).toBe(0);
  });

  itConf("ProxyJump in the file: through the jump host (multihop), the command's exit code comes back", async () => {
    writeConfig(
      [
        "Host jump",
        "  HostName 127.0.0.1",
        `  Port ${ours.port}`,
        "Host inside",
        "  HostName 127.0.0.1",
        `  Port ${ours.port}`,
        "  ProxyJump jump",
        "Host *",
        `  User ${USER}`,
        `  IdentityFile ${key}`,
      ].join("\n") + "\n",
    );
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "inside", "echo $SSH_CONNECTION; exit 6"], { env: { HOME: home } });
    // The last hop saw a connection from the jump's direct-tcpip (127.0.0.1), not from us directly.
    expect(r.stdout, r.stderr).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 \d+\n$/);
    expect(r.status).toBe(6);
  });

  itConf("a config that is /dev/zero is read no further than Dropbear reads a line, and the flags still connect", async () => {
    const config = join(home, ".ssh", "config");
    rmSync(config, { force: true });
    symlinkSync("/dev/zero", config);
    try {
      const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(ours.port), `${USER}@127.0.0.1`, "echo past-the-config"], { env: { HOME: home }, timeoutMs: 30_000 });
      expect(r.stdout, r.stderr).toBe("past-the-config\n");
      expect(r.status).toBe(0);
    } finally {
      rmSync(config);
    }
  });
});
