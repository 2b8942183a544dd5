import { chmodSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, type PeerName, itAsRoot } from "./helpers/peers.js";
import { opensshKeygen, OURS, freePort, ourKeygen, scratch, startOurDropbear, startSshd, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";
import { echoRoundTrip, startEchoTarget, startTunnel, type Target } from "./helpers/tunnel.js";

// Issue 3: a key exchange in the middle of a transfer, started by the peer, loses nothing.
// OpenSSH's RekeyLimit makes the peer rekey every few MiB while data flows through -L.

const USER = "dbtsrekey";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-rekey-");
const cleanups: Array<() => Promise<void> | void> = [];
let dbKey = "";
let sshKey = "";
let hostKey = "";

const itRoot = (peers: PeerName[], title: string, fn: () => Promise<void>): void => itAsRoot(peers, title, fn, 120_000);

beforeAll(() => {
  if (!isRoot) return;
  const user = addTestUser(USER, { password: `rekey-${process.pid}` });
  dbKey = join(work.dir, "id_dropbear");
  ourKeygen(dbKey);
  sshKey = join(work.dir, "id_openssh");
  opensshKeygen(sshKey);
  hostKey = join(work.dir, "hk");
  ourKeygen(hostKey);
  authorizeKeys(user, `${dbKey}.pub`, `${sshKey}.pub`);
  chmodSync(sshKey, 0o600);
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
}, 60_000);

const MIB = 48;

describe("rekey in the middle of a transfer", () => {
  itRoot(["ssh"], "OpenSSH ssh (RekeyLimit 4M) -> our server: several rekeys, every byte intact", async () => {
    const target: Target = await startEchoTarget();
    cleanups.push(() => target.close());
    const server: Server = await startOurDropbear(["-r", hostKey]);
    cleanups.push(() => server.stop());
    const lport = await freePort();
    const t = await startTunnel(
      PEERS.ssh,
      ["-v", "-N", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "RekeyLimit=4M", "-i", sshKey, "-p", String(server.port), "-L", `127.0.0.1:${lport}:127.0.0.1:${target.port}`, `${USER}@127.0.0.1`],
      lport,
    );
    cleanups.push(() => t.stop());
    const rt = await echoRoundTrip(lport, MIB << 20);
    expect(rt.got).toBe(MIB << 20);
    expect(rt.gotHash).toBe(rt.sentHash);
    // The first exchange plus at least two more during the transfer.
    expect((t.log().match(/SSH2_MSG_KEXINIT sent/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(t.alive()).toBe(true);
  });

  itRoot(["sshd"], "our dbclient -> sshd (RekeyLimit 4M): the server rekeys while data flows, every byte intact", async () => {
    const target: Target = await startEchoTarget();
    cleanups.push(() => target.close());
    const d = scratch("dbts-rekey-sshd-");
    cleanups.push(() => d.cleanup());
    const server = await startSshd(d.dir, ["RekeyLimit 4M"]);
    cleanups.push(() => server.stop());
    const lport = await freePort();
    const t = await startTunnel(
      process.execPath,
      [OURS.dbclient, "-N", "-y", "-y", "-i", dbKey, "-p", String(server.port), "-L", `127.0.0.1:${lport}:127.0.0.1:${target.port}`, `${USER}@127.0.0.1`],
      lport,
    );
    cleanups.push(() => t.stop());
    const rt = await echoRoundTrip(lport, MIB << 20);
    expect(rt.got).toBe(MIB << 20);
    expect(rt.gotHash).toBe(rt.sentHash);
    expect((server.log().match(/kex: algorithm:/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(t.alive()).toBe(true);
  });
});
