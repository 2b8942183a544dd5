import { randomBytes } from "node:crypto";
import { chownSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { expectCommandStreams, type RunCommand } from "./helpers/interop.js";
import { IS_ROOT, PEERS, itAsRoot } from "./helpers/peers.js";
import {
  OURS,
  homeWithKnownHosts,
  opensshKeygen,
  publicKeyLine,
  run,
  runBytes,
  scratch,
  startHashSink,
  sha256hex,
  startOurDropbearForEveryHostKey,
  startPeerServer,
  type BytesResult,
  type Server,
} from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// libssh (Debian's libssh-4 0.10, the C library behind KDE's and GNOME's remote tools, libvirt's
// and many appliances' SSH) both ways: tests/helpers/libssh-peer.c, built here with the system's
// C compiler. Its client against our dropbear (each key exchange, cipher, MAC and host key type
// both sides have, a command's streams and status, bulk data both ways, also with a rekey every
// 256 KiB, a direct-tcpip channel and an SFTP read); its server under our dbclient (a command,
// bulk data both ways). libssh 0.10's server rekeying mid-transfer (SSH_OPTIONS_REKEY_DATA)
// drops connections with OpenSSH's ssh and C dbclient as with ours (checked by hand, session
// 57), so that case is not here.

const USER = "dbtslibssh";
const SOURCE = fileURLToPath(new URL("./helpers/libssh-peer.c", import.meta.url));
const work = scratch("dbts-libssh-");
const tools = ["cc", "libssh.h", "ssh-keygen"] as const;
const user = { home: "", uid: 0, gid: 0 };
const peerBin = join(work.dir, "libssh-peer");
let key = "";
let ours: Server;
/** Host key algorithm → the SHA256 fingerprint of our server's key for it. */
let fingerprints = new Map<string, string>();
let sink: { port: number; close: () => void } | null = null;
let libsshServer: { port: number; stop: () => Promise<void> } | null = null;
let libsshPort = 0;
let libsshHostKey = "";

/** libssh's client against our server, the host key of `hostkey` expected. */
function libssh(mode: string, arg: string, o: { input?: Buffer; env?: Record<string, string>; hostkey?: string } = {}): Promise<BytesResult> {
  const hostkey = o.hostkey ?? "ssh-ed25519";
  return runBytes(peerBin, ["client", String(ours.port), USER, key, fingerprints.get(hostkey)!, mode, arg], { env: { LIBSSH_HOSTKEYS: hostkey, ...o.env }, input: o.input });
}

/** What libssh-peer's client says was agreed. */
function agreed(err: string): { kex: string; cipher: string; hostkey: string } {
  const m = /libssh-peer: kex (\S+) cipher (\S+) hostkey (\S+)/.exec(err);
  return { kex: m?.[1] ?? "", cipher: m?.[2] ?? "", hostkey: m?.[3] ?? "" };
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  const cc = await run(PEERS.cc, ["-O1", "-Wall", "-Werror", "-o", peerBin, SOURCE, "-lssh"]);
  if (cc.status !== 0) throw new Error(`building libssh-peer: ${cc.stderr}`);
  ({ home: user.home, uid: user.uid, gid: user.gid } = addTestUser(USER));
  key = opensshKeygen(join(work.dir, "id_ed25519"), { comment: "libssh-client" });
  authorizeKeys(user, `${key}.pub`);
  ({ server: ours, fingerprints } = await startOurDropbearForEveryHostKey(work.dir));
  sink = await startHashSink();
  const hk = opensshKeygen(join(work.dir, "libssh_host_key"));
  libsshHostKey = publicKeyLine(`${hk}.pub`);
  libsshServer = await startPeerServer(peerBin, ["server", hk, `${key}.pub`]);
  libsshPort = libsshServer.port;
}, 60_000);

afterAll(async () => {
  await libsshServer?.stop();
  sink?.close();
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("libssh's client against our dropbear", () => {
  itAsRoot([...tools], "every key exchange, cipher, MAC and host key type both have", async () => {
    const cases: [Record<string, string>, Partial<ReturnType<typeof agreed>>][] = [
      ...["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512"].map(
        (k): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ LIBSSH_KEX: k }, { kex: k }],
      ),
      ...["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "aes256-ctr", "aes128-ctr"].map(
        (c): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ LIBSSH_CIPHERS: c }, { cipher: c }],
      ),
      // libssh reports no MAC; a wrong one would fail the first packet after NEWKEYS.
      ...["hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"].map(
        (m): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ LIBSSH_CIPHERS: "aes128-ctr", LIBSSH_MACS: m }, { cipher: "aes128-ctr" }],
      ),
    ];
    for (const [env, want] of cases) {
      const r = await libssh("exec", "echo ok", { env });
      expect(r.status, `${JSON.stringify(env)}: ${r.err}`).toBe(0);
      expect(r.out.toString()).toBe("ok\n");
      expect(agreed(r.err)).toMatchObject(want);
    }
    for (const hostkey of ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"]) {
      const r = await libssh("exec", "true", { hostkey });
      expect(r.status, `${hostkey}: ${r.err}`).toBe(0);
      // libssh names an RSA key "ssh-rsa" whichever signature was verified.
      expect(agreed(r.err).hostkey).toBe(hostkey.startsWith("rsa-") ? "ssh-rsa" : hostkey);
    }
  });

  itAsRoot([...tools], "a command's stdout, stderr and exit status", async () => {
    const r = await libssh("exec", "echo out; echo err >&2; exit 42");
    expect(r.status, r.err).toBe(42);
    expect(r.out.toString()).toBe("out\n");
    expect(r.err).toContain("err\n");
  });

  itAsRoot([...tools], "3 MB up to a command and 3 MB down from one, intact", async () => {
    const up = randomBytes(3_000_000);
    const u = await libssh("exec", "sha256sum", { input: up });
    expect(u.status, u.err).toBe(0);
    expect(u.out.toString().split(" ")[0]).toBe(sha256hex(up));
    const down = randomBytes(3_000_000);
    const file = join(user.home, "down.bin");
    writeFileSync(file, down);
    chownSync(file, user.uid, user.gid);
    const d = await libssh("exec", "cat down.bin");
    expect(d.status, d.err).toBe(0);
    expect(d.out.equals(down)).toBe(true);
  });

  itAsRoot([...tools], "new key exchanges mid-transfer (SSH_OPTIONS_REKEY_DATA 256 KiB) while 2 MB go up and 2 MB come down, with each cipher kind", async () => {
    const data = randomBytes(2_000_000);
    const file = join(user.home, "rekey.bin");
    writeFileSync(file, data);
    chownSync(file, user.uid, user.gid);
    const cases: Record<string, string>[] = [
      { LIBSSH_CIPHERS: "aes128-ctr", LIBSSH_MACS: "hmac-sha2-512-etm@openssh.com" },
      { LIBSSH_CIPHERS: "aes256-gcm@openssh.com" },
      { LIBSSH_CIPHERS: "chacha20-poly1305@openssh.com" },
    ];
    for (const env of cases) {
      const rekey = { ...env, LIBSSH_REKEY: String(256 * 1024) };
      const up = await libssh("exec", "sha256sum", { input: data, env: rekey });
      expect(up.status, `${JSON.stringify(env)}: ${up.err}`).toBe(0);
      expect(up.out.toString().split(" ")[0]).toBe(sha256hex(data));
      const down = await libssh("exec", "cat rekey.bin", { env: rekey });
      expect(down.status, `${JSON.stringify(env)}: ${down.err}`).toBe(0);
      expect(down.out.equals(data), JSON.stringify(env)).toBe(true);
    }
  }, 120_000);

  itAsRoot([...tools], "a direct-tcpip channel carries 2 MB to a local port, and the answer back", async () => {
    const data = randomBytes(2_000_000);
    const r = await libssh("forward", String(sink!.port), { input: data });
    expect(r.status, r.err).toBe(0);
    expect(r.out.toString()).toBe(sha256hex(data));
  });

  itAsRoot([...tools], "SFTP reads a 3 MB file intact", async () => {
    const data = randomBytes(3_000_000);
    const file = join(user.home, "sftp.bin");
    writeFileSync(file, data);
    chownSync(file, user.uid, user.gid);
    const r = await libssh("sftp-get", file);
    expect(r.status, r.err).toBe(0);
    expect(r.out.equals(data)).toBe(true);
  });
});

describe("our dbclient against libssh's server", () => {
  itAsRoot([...tools], "the host key verified from known_hosts; a command's streams and status; 3 MB both ways", async () => {
    const home = homeWithKnownHosts(work.dir, "home", [`[127.0.0.1]:${libsshPort} ${libsshHostKey}`]);
    const dbclient: RunCommand = (command, input) =>
      runBytes(process.execPath, [OURS.dbclient, "-i", key, "-p", String(libsshPort), `${USER}@127.0.0.1`, command], { env: { HOME: home }, input });
    expect((await dbclient("true")).err).not.toMatch(/Caution|skipping/);
    await expectCommandStreams(dbclient);
  });
});
