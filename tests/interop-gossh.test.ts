import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createConnection } from "node:net";
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
// against our dropbear with each algorithm both have, commands, bulk data, a direct-tcpip
// channel and a tcpip-forward; its server under our dbclient, with commands, -L and -R.

const USER = "dbtsgossh";
const PASSWORD = "gossh-interop-pw-7";
const SOURCE = fileURLToPath(new URL("./helpers/gossh-peer.go", import.meta.url));
const work = scratch("dbts-gossh-");
const tools = ["go", "x/crypto/ssh", "ssh-keygen"] as const;
const peerBin = join(work.dir, "gossh-peer");
let key = "";
let ours: Server;
/** Host key algorithm → our server's key fingerprint for it. */
let fingerprints = new Map<string, string>();
let sink: { port: number; close: () => void } | null = null;
let goServer: { port: number; stop: () => Promise<void> } | null = null;
let goPort = 0;
/** A HOME for our dbclient whose known_hosts holds the Go server's key. */
let goHome = "";

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
  authorizeKeys(user, `${key}.pub`);
  ({ server: ours, fingerprints } = await startOurDropbearForEveryHostKey(work.dir));
  sink = await startHashSink();
  const hk = opensshKeygen(join(work.dir, "go_host_key"));
  goServer = await startPeerServer(peerBin, ["server", hk, `${key}.pub`]);
  goPort = goServer.port;
  goHome = homeWithKnownHosts(work.dir, "home", [`[127.0.0.1]:${goPort} ${publicKeyLine(`${hk}.pub`)}`]);
}, 180_000);

afterAll(async () => {
  await goServer?.stop();
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
