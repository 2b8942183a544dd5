import { randomBytes } from "node:crypto";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server as NetServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { expectCommandStreams } from "./helpers/interop.js";
import { IS_ROOT, PEERS, itNetSsh2 } from "./helpers/peers.js";
import { opensshKeygen, publicKeyLine, runBytes, scratch, startOurDropbearWithHostKeys, type BytesResult, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// libssh2's own API through Perl's Net::SSH2 (Debian's libnet-ssh2-perl 0.73 on libssh2 1.10),
// against our dropbear: tests/helpers/netssh2-peer.pl. tests/interop-libssh2.test.ts reaches
// libssh2 only through curl's sftp:// and scp://; this drives what PHP's ssh2, libgit2 and
// embedded tools use of it: each shared algorithm, exec with stdin and exit status, a pty
// shell, direct-tcpip, tcpip-forward, scp and sftp. libssh2 1.10 has no AES-GCM, chacha20-poly1305,
// ETM MACs or rsa-sha2 host keys, and signs with RSA user keys only as ssh-rsa (see interop-libssh2).

const USER = "dbtsnetssh2";
const PASSWORD = "netssh2-interop-pw-3";
const PEER = fileURLToPath(new URL("./helpers/netssh2-peer.pl", import.meta.url));
const work = scratch("dbts-netssh2-");
const hostKeys = join(work.dir, "host_keys.pub");
const user = { home: "", uid: 0, gid: 0 };
let key = "";
let ours: Server;

/** netssh2-peer.pl against our server: MODE with ARGS and `input`, with the key (or the password when `password`). */
function netssh2(mode: string, args: string[] = [], o: { input?: Buffer | string; password?: string } = {}): Promise<BytesResult> {
  const auth = o.password === undefined ? { NETSSH2_KEY: key } : { NETSSH2_PASSWORD: o.password };
  return runBytes(PEERS.perl, [PEER, String(ours.port), USER, mode, ...args], { env: { NETSSH2_HOSTKEY: hostKeys, ...auth }, input: o.input ?? "" });
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  ({ home: user.home, uid: user.uid, gid: user.gid } = addTestUser(USER, { password: PASSWORD }));
  key = opensshKeygen(join(work.dir, "id_ed25519"), { type: "ed25519" });
  authorizeKeys(user, `${key}.pub`);
  const started = await startOurDropbearWithHostKeys(work.dir, ["ed25519", "ecdsa"]);
  ours = started.server;
  writeFileSync(hostKeys, started.hostKeys.map((k) => `${publicKeyLine(`${k}.pub`)}\n`).join(""));
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
});

describe("libssh2 (Perl's Net::SSH2) against our dropbear", () => {
  itNetSsh2("each key exchange both have, each host key, cipher and MAC in turn, the host key checked", async () => {
    const r = await netssh2("algos");
    expect(r.status, r.err).toBe(0);
    const lines = r.out.toString().trim().split("\n");
    expect(lines).toHaveLength(7);
    expect(lines.every((l) => l.endsWith(" ok"))).toBe(true);
    const kex = lines.map((l) => l.split(" ")[3]);
    expect(kex).toEqual(["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512"]);
  });

  itNetSsh2("a command's stdout, stderr and exit status; 3 MB through `cat` both ways intact; a password logs in, a wrong one is refused", async () => {
    await expectCommandStreams((command, input) => netssh2("exec", [command], { input }));
    const pw = await netssh2("exec", ["id -un"], { password: PASSWORD });
    expect(pw.status, pw.err).toBe(0);
    expect(pw.out.toString()).toBe(`${USER}\n`);
    const bad = await netssh2("exec", ["id -un"], { password: "wrong" });
    expect(bad.status).not.toBe(0);
    expect(bad.err).toContain("AUTHENTICATION_FAILED");
  });

  itNetSsh2("a pty of the size asked for, a shell and its exit status", async () => {
    const r = await netssh2("shell");
    expect(r.status, r.err).toBe(3);
    // The shell prints "30 100" after its prompt, which follows the echo of the line typed.
    expect(r.out.toString()).toMatch(/\b30 100\r\n/);
  });

  itNetSsh2("direct-tcpip carries 2 MB to a local port and back; tcpip-forward for port 0 binds, answers with the port and forwards a connection", async () => {
    const echo: NetServer = createServer((s) => s.pipe(s));
    await new Promise<void>((res) => echo.listen(0, "127.0.0.1", res));
    try {
      const data = randomBytes(2_000_000);
      const port = (echo.address() as { port: number }).port;
      const r = await netssh2("tcpip", [String(port)], { input: data });
      expect(r.status, r.err).toBe(0);
      expect(r.out.equals(data)).toBe(true);
    } finally {
      echo.close();
    }
    const f = await netssh2("forward");
    expect(f.status, f.err).toBe(0);
    expect(f.out.toString()).toMatch(/^bound [1-9]\d*, the connection got: back: hello\n$/);
  });

  itNetSsh2("scp and sftp: 3 MB up and back down intact", async () => {
    const data = randomBytes(3_000_000);
    const local = join(work.dir, "up.bin");
    writeFileSync(local, data);
    for (const kind of ["scp", "sftp"]) {
      const remote = join(user.home, `${kind}.bin`);
      const up = await netssh2(`${kind}-put`, [local, remote]);
      expect(up.status, `${kind}: ${up.err}`).toBe(0);
      expect(readFileSync(remote).equals(data), kind).toBe(true);
      chownSync(remote, user.uid, user.gid);
      const back = join(work.dir, `${kind}.back`);
      const down = await netssh2(`${kind}-get`, [remote, back]);
      expect(down.status, `${kind}: ${down.err}`).toBe(0);
      expect(readFileSync(back).equals(data), kind).toBe(true);
    }
  });
});
