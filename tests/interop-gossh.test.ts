import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { expectCommandStreams, type RunCommand } from "./helpers/interop.js";
import { IS_ROOT, PEERS, itAsRoot } from "./helpers/peers.js";
import {
  OURS,
  exited,
  freePort,
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
  waitPort,
  type BytesResult,
  type Server,
} from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Go's golang.org/x/crypto/ssh (Debian's golang-golang-x-crypto-dev 0.4, built with Debian's Go
// 1.19 from tests/helpers/gossh-peer.go), the SSH of many Go programs, both ways: its client
// against our dropbear with each algorithm both have, every user key type, commands, bulk data
// with a rekey every 256 KiB, a direct-tcpip channel, a tcpip-forward, many sessions at once;
// its server under our dbclient, with commands, -L and -R, and with rekeys of its own.

const USER = "dbtsgossh";
const PASSWORD = "gossh-interop-pw-7";
const SOURCE = fileURLToPath(new URL("./helpers/gossh-peer.go", import.meta.url));
const work = scratch("dbts-gossh-");
const tools = ["go", "x/crypto/ssh", "ssh-keygen"] as const;
const peerBin = join(work.dir, "gossh-peer");
let key = "";
/** Our client's ECDSA and RSA keys, authorized too: file name → path. */
const otherKeys = new Map<string, string>();
/** An OpenSSH certificate for `key`, signed by a CA nobody trusts (Dropbear takes no certificates). */
let cert = "";
let ours: Server;
/** Host key algorithm → our server's key fingerprint for it. */
let fingerprints = new Map<string, string>();
let sink: { port: number; close: () => void } | null = null;
let goServer: { port: number; stop: () => Promise<void> } | null = null;
let goPort = 0;
/** The same Go server but with RekeyThreshold 256 KiB: it starts key exchanges while data flows. */
let goRekeyServer: { port: number; stop: () => Promise<void> } | null = null;
/** A HOME for our dbclient whose known_hosts holds the Go server's key. */
let goHome = "";

/** x/crypto's RekeyThreshold in the rekey tests: a key exchange each 256 KiB each way (x/crypto's least is 256 bytes). */
const REKEY_BYTES = 256 * 1024;

/** The Go client against our server: MODE with ARG and `input`, under the GOSSH_* choices in `env`. */
function goClient(mode: string, arg: string, o: { input?: Buffer | string; env?: Record<string, string> } = {}): Promise<BytesResult> {
  // One host key type offered, so that the fingerprint expected is the one the server shows.
  const env = { GOSSH_HOSTKEY: "ssh-ed25519", ...o.env };
  return runBytes(peerBin, ["client", String(ours.port), USER, key, fingerprints.get(env.GOSSH_HOSTKEY)!, mode, arg], { env, input: o.input });
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  // GOPATH mode against Debian's packaged sources: no module download.
  const built = await run(PEERS.go, ["build", "-o", peerBin, SOURCE], {
    env: { GO111MODULE: "off", GOPATH: "/usr/share/gocode", GOCACHE: join(work.dir, "gocache"), GOFLAGS: "" },
    timeoutMs: 120_000,
  });
  if (built.status !== 0) throw new Error(`building gossh-peer: ${built.stderr}`);
  const user = addTestUser(USER, { password: PASSWORD });
  key = opensshKeygen(join(work.dir, "id_ed25519"), { comment: "gossh-client" });
  for (const [name, type, bits] of [["id_ecdsa256", "ecdsa", 256], ["id_ecdsa384", "ecdsa", 384], ["id_ecdsa521", "ecdsa", 521], ["id_rsa", "rsa", 2048]] as const) {
    otherKeys.set(name, opensshKeygen(join(work.dir, name), { type, bits }));
  }
  authorizeKeys(user, `${key}.pub`, ...[...otherKeys.values()].map((k) => `${k}.pub`));
  const ca = opensshKeygen(join(work.dir, "ca"));
  const signed = await run(PEERS["ssh-keygen"], ["-q", "-s", ca, "-I", "gossh-cert", "-n", USER, `${key}.pub`]);
  if (signed.status !== 0) throw new Error(`ssh-keygen -s: ${signed.stderr}`);
  cert = `${key}-cert.pub`;
  ({ server: ours, fingerprints } = await startOurDropbearForEveryHostKey(work.dir));
  sink = await startHashSink();
  const hk = opensshKeygen(join(work.dir, "go_host_key"));
  goServer = await startPeerServer(peerBin, ["server", hk, `${key}.pub`]);
  goPort = goServer.port;
  goRekeyServer = await startPeerServer(peerBin, ["server", hk, `${key}.pub`], { GOSSH_REKEY: String(REKEY_BYTES) });
  goHome = homeWithKnownHosts(work.dir, "home", [
    `[127.0.0.1]:${goPort} ${publicKeyLine(`${hk}.pub`)}`,
    `[127.0.0.1]:${goRekeyServer.port} ${publicKeyLine(`${hk}.pub`)}`,
  ]);
}, 180_000);

afterAll(async () => {
  await goServer?.stop();
  await goRekeyServer?.stop();
  sink?.close();
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("Go's x/crypto/ssh client against our dropbear", () => {
  itAsRoot([...tools], "every key exchange, cipher, MAC and host key type both have", async () => {
    // x/crypto 0.4 has neither hmac-sha2-512 nor diffie-hellman-group16-sha512.
    const cases: Record<string, string>[] = [
      ...["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256"].map((k) => ({ GOSSH_KEX: k })),
      ...["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes128-ctr", "aes256-ctr"].map((c) => ({ GOSSH_CIPHER: c })),
      ...["hmac-sha2-256", "hmac-sha2-256-etm@openssh.com"].map((m) => ({ GOSSH_CIPHER: "aes128-ctr", GOSSH_MAC: m })),
      ...["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"].map((h) => ({ GOSSH_HOSTKEY: h })),
    ];
    for (const env of cases) {
      const r = await goClient("exec", "echo ok", { env });
      expect(r.status, `${JSON.stringify(env)}: ${r.err}`).toBe(0);
      expect(r.out.toString()).toBe("ok\n");
    }
  }, 120_000);

  itAsRoot([...tools], "a command's stdout, stderr and exit status; 3 MB through `cat` both ways intact", () =>
    expectCommandStreams((command, input) => goClient("exec", command, { input })),
  );

  itAsRoot([...tools], "every user key type: ECDSA P-256, P-384, P-521 and RSA (an rsa-sha2-* signature, from our server-sig-algs)", async () => {
    for (const [name, path] of otherKeys) {
      const r = await runBytes(peerBin, ["client", String(ours.port), USER, path, fingerprints.get("ssh-ed25519")!, "exec", "echo ok"], { env: { GOSSH_HOSTKEY: "ssh-ed25519" } });
      expect(r.status, `${name}: ${r.err}`).toBe(0);
      expect(r.out.toString()).toBe("ok\n");
    }
  });

  itAsRoot([...tools], "an OpenSSH certificate is refused like any key not authorized (Dropbear takes none), the connection ended cleanly", async () => {
    const r = await goClient("exec", "echo in", { env: { GOSSH_CERT: cert } });
    expect(r.status).toBe(255);
    expect(r.out.toString()).toBe("");
    expect(r.err).toMatch(/unable to authenticate, attempted methods \[none publickey\]/);
  });

  itAsRoot([...tools], "new key exchanges mid-transfer (RekeyThreshold 256 KiB: a few while 2 MB go through `cat` both ways), with each cipher and MAC kind", async () => {
    const data = randomBytes(2_000_000);
    const cases: Record<string, string>[] = [
      { GOSSH_CIPHER: "aes128-ctr", GOSSH_MAC: "hmac-sha2-256" },
      { GOSSH_CIPHER: "aes256-ctr", GOSSH_MAC: "hmac-sha2-256-etm@openssh.com" },
      { GOSSH_CIPHER: "aes128-gcm@openssh.com" },
      { GOSSH_CIPHER: "chacha20-poly1305@openssh.com" },
    ];
    for (const env of cases) {
      const r = await goClient("exec", "cat", { input: data, env: { ...env, GOSSH_REKEY: String(REKEY_BYTES) } });
      expect(r.status, `${JSON.stringify(env)}: ${r.err}`).toBe(0);
      expect(r.out.equals(data), JSON.stringify(env)).toBe(true);
    }
  }, 120_000);

  itAsRoot([...tools], "keepalive@openssh.com global requests wanting a reply are each answered (refused, as Dropbear), and the connection goes on", async () => {
    const r = await goClient("keepalive", "3");
    expect(r.status, r.err).toBe(0);
    expect(r.out.toString()).toBe("refused\nrefused\nrefused\n");
  });

  itAsRoot([...tools], "40 sessions open at once on one connection, each with its own command and output", async () => {
    const r = await goClient("many", "40");
    expect(r.status, r.err).toBe(0);
    expect(r.out.toString()).toBe("40\n");
  });

  itAsRoot([...tools], "a command killed by a signal: exit-signal with its name", async () => {
    const r = await goClient("signal", "kill -HUP $$");
    expect(r.status, r.err).toBe(0);
    expect(r.out.toString()).toBe("status 129 signal HUP\n");
  });

  itAsRoot([...tools], "direct-streamlocal@openssh.com to a Unix socket carries 1 MB and the answer back; streamlocal-forward@openssh.com is refused, as Dropbear", async () => {
    // A directory the test user can reach: the socket is connected to as that user.
    const dir = mkdtempSync(join(tmpdir(), "dbts-gossh-unix-"));
    chmodSync(dir, 0o755);
    const path = join(dir, "sink.sock");
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      const h = createHash("sha256");
      sock.on("data", (d: Buffer) => h.update(d));
      sock.on("end", () => sock.end(h.digest("hex")));
      sock.on("error", () => undefined);
    });
    try {
      server.listen(path);
      await once(server, "listening");
      chmodSync(path, 0o777);
      const data = randomBytes(1_000_000);
      const r = await goClient("forward", path, { input: data });
      expect(r.status, r.err).toBe(0);
      expect(r.out.toString()).toBe(sha256hex(data));
      const listen = await goClient("listen", join(dir, "remote.sock"), { input: "" });
      expect(listen.status).toBe(255);
      expect(listen.err).toMatch(/streamlocal-forward@openssh.com request denied/);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  itAsRoot([...tools], "password authentication: the right password logs in, a wrong one is refused", async () => {
    const ok = await goClient("exec", "echo in", { env: { GOSSH_PASSWORD: PASSWORD } });
    expect(ok.status, ok.err).toBe(0);
    expect(ok.out.toString()).toBe("in\n");
    const wrong = await goClient("exec", "echo in", { env: { GOSSH_PASSWORD: `${PASSWORD}-not` } });
    expect(wrong.status).toBe(255);
    expect(wrong.out.toString()).toBe("");
    expect(wrong.err).toMatch(/unable to authenticate/);
  });

  itAsRoot([...tools], "a direct-tcpip channel carries 2 MB to a local port, and the answer back", async () => {
    const data = randomBytes(2_000_000);
    const r = await goClient("forward", String(sink!.port), { input: data });
    expect(r.status, r.err).toBe(0);
    expect(r.out.toString()).toBe(sha256hex(data));
  });

  itAsRoot([...tools], "a tcpip-forward for port 0: our server binds a port, answers with it, and forwards a connection there (1 MB echoed)", async () => {
    const listener = await startPeerServer(peerBin, ["client", String(ours.port), USER, key, fingerprints.get("ssh-ed25519")!, "listen", "0"], { GOSSH_HOSTKEY: "ssh-ed25519" });
    try {
      const { port } = listener;
      expect(port).toBeGreaterThan(0);
      const data = randomBytes(1_000_000);
      const sock = createConnection({ port, host: "127.0.0.1", allowHalfOpen: true });
      await once(sock, "connect");
      const back: Buffer[] = [];
      sock.on("data", (d: Buffer) => back.push(d));
      sock.end(data);
      await once(sock, "end");
      expect(Buffer.concat(back).equals(data)).toBe(true);
    } finally {
      await listener.stop();
    }
  });
});

describe("our dbclient against Go's x/crypto/ssh server", () => {
  itAsRoot([...tools], "the host key verified from known_hosts; a command's streams and status; 3 MB both ways", async () => {
    const dbclient: RunCommand = (command, input) =>
      runBytes(process.execPath, [OURS.dbclient, "-i", key, "-p", String(goPort), `${USER}@127.0.0.1`, command], { env: { HOME: goHome }, input });
    expect((await dbclient("true")).err).not.toMatch(/Caution|skipping/);
    await expectCommandStreams(dbclient);
  });

  itAsRoot([...tools], "the server starting new key exchanges mid-transfer (RekeyThreshold 256 KiB) while 3 MB go through `cat` both ways", async () => {
    const data = randomBytes(3_000_000);
    const r = await runBytes(process.execPath, [OURS.dbclient, "-i", key, "-p", String(goRekeyServer!.port), `${USER}@127.0.0.1`, "cat"], { env: { HOME: goHome }, input: data });
    expect(r.status, r.err).toBe(0);
    expect(r.out.equals(data)).toBe(true);
  });

  for (const [flag, what] of [
    ["-L", "a local port, to a port on the server's side"],
    ["-R", "a port the server listens on, to a local port"],
  ] as const) {
    itAsRoot([...tools], `${flag}: 2 MB through ${what}, and the answer back`, async () => {
      const port = await freePort();
      const child = spawn(process.execPath, [OURS.dbclient, "-N", "-i", key, "-p", String(goPort), flag, `127.0.0.1:${port}:127.0.0.1:${sink!.port}`, `${USER}@127.0.0.1`], {
        env: { ...process.env, HOME: goHome },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      try {
        await waitPort(port, child, () => err);
        const data = randomBytes(2_000_000);
        const sock = createConnection({ port, host: "127.0.0.1", allowHalfOpen: true });
        await once(sock, "connect");
        let reply = "";
        sock.on("data", (d: Buffer) => (reply += d.toString()));
        sock.end(data);
        await once(sock, "end");
        expect(reply, err).toBe(sha256hex(data));
      } finally {
        child.kill("SIGTERM");
        await exited(child);
      }
    });
  }
});
