import { randomBytes } from "node:crypto";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { expectCommandStreams } from "./helpers/interop.js";
import { IS_ROOT, PEERS, itAsRoot } from "./helpers/peers.js";
import { publicKeyLine, run, runBytes, scratch, startOurDropbearWithHostKeys, type BytesResult, type Server } from "./helpers/servers.js";
import { addTestUser, removeTestUser } from "./helpers/users.js";

// JSch (Debian's libjsch-java, 0.1.5x), the Java SSH client of Ant's scp and sshexec, older
// Jenkins and Eclipse, against our dropbear: tests/helpers/JschPeer.java, compiled here. It is
// of 2018: ECDH key exchange, AES-CTR with HMAC-SHA2-256, ECDSA host keys (it checks RSA host
// keys only with SHA-1 signatures, which Dropbear 2026.94 does not make) and a password.
// Not tested: Session.rekey() called while a command's input is being sent, which hangs JSch
// 0.1.55 whatever the server (session 57, 5 MB up with ten rekey() calls: C Dropbear 2 of 4 runs,
// C with -W 2097152 4 of 4, OpenSSH's sshd 4 of 4, ours 1 to 3 of 4). Its writer thread sleeps
// out the key exchange holding the channel's lock, and its reader thread then blocks on that
// lock at a WINDOW_ADJUST the server had sent before it saw JSch's KEXINIT, so the exchange is
// never read. JSch starts a key exchange only when asked; one the server starts is safe, as no
// WINDOW_ADJUST may follow the server's KEXINIT.

const USER = "dbtsjsch";
const PASSWORD = "jsch-interop-pw-4";
const SOURCE = fileURLToPath(new URL("./helpers/JschPeer.java", import.meta.url));
const work = scratch("dbts-jsch-");
const tools = ["javac", "java", "jsch.jar"] as const;
const classes = join(work.dir, "classes");
const knownHosts = join(work.dir, "known_hosts");
const user = { home: "", uid: 0, gid: 0 };
let ours: Server;

/** JschPeer against our server: MODE with ARG and `input`, under the JSCH_* choices in `env`. */
function jsch(mode: string, arg: string, o: { input?: Buffer | string; env?: Record<string, string> } = {}): Promise<BytesResult> {
  return runBytes(PEERS.java, ["-cp", `${PEERS["jsch.jar"]}:${classes}`, "JschPeer", String(ours.port), USER, knownHosts, mode, arg], {
    env: { JSCH_PASSWORD: PASSWORD, ...o.env },
    input: o.input,
  });
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  const built = await run(PEERS.javac, ["-d", classes, "-cp", PEERS["jsch.jar"], SOURCE], { timeoutMs: 120_000 });
  if (built.status !== 0) throw new Error(`building JschPeer: ${built.stderr}`);
  ({ home: user.home, uid: user.uid, gid: user.gid } = addTestUser(USER, { password: PASSWORD }));
  const started = await startOurDropbearWithHostKeys(work.dir, ["ecdsa"]);
  ours = started.server;
  writeFileSync(knownHosts, `[127.0.0.1]:${ours.port} ${publicKeyLine(`${started.hostKeys[0]!}.pub`)}\n`);
}, 180_000);

afterAll(async () => {
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("JSch against our dropbear", () => {
  itAsRoot([...tools], "each ECDH key exchange and each cipher and MAC both have, with the host key checked and a password", async () => {
    const cases: Record<string, string>[] = [
      ...["ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521"].map((k) => ({ JSCH_KEX: k })),
      ...["aes128-ctr", "aes256-ctr"].map((c) => ({ JSCH_CIPHER: c, JSCH_MAC: "hmac-sha2-256" })),
    ];
    for (const env of cases) {
      const r = await jsch("exec", "echo ok", { env });
      expect(r.status, `${JSON.stringify(env)}: ${r.err}`).toBe(0);
      expect(r.out.toString()).toBe("ok\n");
    }
  }, 120_000);

  itAsRoot([...tools], "a command's stdout, stderr and exit status; 3 MB through `cat` both ways intact", () =>
    expectCommandStreams((command, input) => jsch("exec", command, { input })),
  );

  itAsRoot([...tools], "SFTP: 3 MB up and back down intact", async () => {
    const data = randomBytes(3_000_000);
    const path = join(user.home, "jsch.bin");
    const up = await jsch("sftp-put", path, { input: data });
    expect(up.status, up.err).toBe(0);
    expect(readFileSync(path).equals(data)).toBe(true);
    chownSync(path, user.uid, user.gid);
    const down = await jsch("sftp-get", path);
    expect(down.status, down.err).toBe(0);
    expect(down.out.equals(data)).toBe(true);
  });
});
