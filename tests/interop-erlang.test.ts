import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { exited, opensshKeygen, run, runOurClient, scratch, startOurDropbearWithHostKeys, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Erlang/OTP's ssh application (Debian's erlang-ssh, OTP 25), an implementation of its own in
// Erlang, both ways (tests/helpers/erlang-peer.escript): its client against our dropbear with
// each algorithm both have, and its daemon under our dbclient. A check by hand found its daemon
// forgetting a channel at CLOSE (docs/deviations.md); these keep the two talking.

const USER = "dbtserlang";
const PEER = fileURLToPath(new URL("./helpers/erlang-peer.escript", import.meta.url));
const work = scratch("dbts-erlang-");
const tools = ["escript", "ssh-keygen"] as const;
const IS_ROOT = process.getuid?.() === 0;
let ours: Server;
/** Host key algorithm → our server's key fingerprint for it. */
const fingerprints = new Map<string, string>();
let clientDir = "";
let daemon: ChildProcess | null = null;
let daemonPort = 0;
let daemonHostKey = "";

/** The Erlang client against our server: `command` with `input`, under the ERL_* algorithm choices in `env`. */
function erlangClient(command: string, o: { input?: Buffer; env?: Record<string, string> } = {}): Promise<{ status: number | null; out: Buffer; err: string }> {
  // One host key type offered, so that the fingerprint expected is the one the server shows.
  const env = { ERL_HOSTKEY: "ssh-ed25519", ...o.env };
  const child = spawn(PEERS.escript, [PEER, "client", String(ours.port), USER, clientDir, fingerprints.get(env.ERL_HOSTKEY)!, command], {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  let err = "";
  child.stdout.on("data", (d: Buffer) => out.push(d));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  child.stdin.on("error", () => undefined);
  child.stdin.end(o.input ?? Buffer.alloc(0));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve) =>
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, out: Buffer.concat(out), err });
    }),
  );
}

/** What erlang-peer says was agreed. */
function agreed(err: string): Record<"kex" | "cipher" | "mac" | "hostkey", string> {
  const m = /erlang-peer: kex (\S+) cipher (\S+) mac (\S+) hostkey (\S+)/.exec(err);
  return { kex: m?.[1] ?? "", cipher: m?.[2] ?? "", mac: m?.[3] ?? "", hostkey: m?.[4] ?? "" };
}

/** Our dbclient against the Erlang daemon, its host key checked against a known_hosts holding `knownKey`. */
function dbclientToErlang(args: string[], knownKey: string): ReturnType<typeof runOurClient> {
  const home = join(work.dir, `home-${createHash("sha256").update(knownKey).digest("hex").slice(0, 8)}`);
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  writeFileSync(join(home, ".ssh", "known_hosts"), `[127.0.0.1]:${daemonPort} ${knownKey}\n`);
  return runOurClient(["-i", join(clientDir, "id_ed25519"), "-p", String(daemonPort), `${USER}@127.0.0.1`, ...args], { env: { HOME: home } });
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  const user = addTestUser(USER);
  clientDir = join(work.dir, "client");
  mkdirSync(clientDir);
  const key = opensshKeygen(join(clientDir, "id_ed25519"), { comment: "erlang-client" });
  authorizeKeys(user, `${key}.pub`);
  const started = await startOurDropbearWithHostKeys(work.dir, ["ed25519", "ecdsa", "rsa"]);
  ours = started.server;
  for (const [i, names] of [["ssh-ed25519"], ["ecdsa-sha2-nistp256"], ["rsa-sha2-256", "rsa-sha2-512"]].entries()) {
    const fp = await run(PEERS["ssh-keygen"], ["-l", "-f", `${started.hostKeys[i]!}.pub`]);
    for (const n of names) fingerprints.set(n, fp.stdout.split(" ")[1]!);
  }
  // The daemon: its host key in its system dir, our client's key in its user dir.
  const systemDir = join(work.dir, "erl-system");
  const userDir = join(work.dir, "erl-user");
  mkdirSync(systemDir);
  mkdirSync(userDir);
  const hk = opensshKeygen(join(systemDir, "ssh_host_ed25519_key"));
  daemonHostKey = readFileSync(`${hk}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" ");
  writeFileSync(join(userDir, "authorized_keys"), readFileSync(`${key}.pub`));
  daemon = spawn(PEERS.escript, [PEER, "server", systemDir, userDir], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: daemon.stdout! });
  const [line] = (await once(lines, "line")) as [string];
  lines.close();
  daemonPort = (JSON.parse(line) as { port: number }).port;
}, 60_000);

afterAll(async () => {
  daemon?.stdin?.end();
  if (daemon !== null) await exited(daemon);
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("Erlang/OTP's ssh client against our dropbear", () => {
  itAsRoot([...tools], "every key exchange, cipher, MAC and host key type both have", async () => {
    // Erlang names an AES-GCM cipher (and its MAC) by its AEAD name.
    const aead: Record<string, string> = { "aes128-gcm@openssh.com": "AEAD_AES_128_GCM", "aes256-gcm@openssh.com": "AEAD_AES_256_GCM" };
    const cases: [Record<string, string>, Partial<ReturnType<typeof agreed>>][] = [
      ...["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384", "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512"].map(
        (k): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ ERL_KEX: k }, { kex: k }],
      ),
      ...["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"].map(
        (c): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ ERL_CIPHER: c }, { cipher: aead[c] ?? c }],
      ),
      ...["hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"].map(
        (m): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ ERL_CIPHER: "aes128-ctr", ERL_MAC: m }, { cipher: "aes128-ctr", mac: m }],
      ),
      ...["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"].map(
        (h): [Record<string, string>, Partial<ReturnType<typeof agreed>>] => [{ ERL_HOSTKEY: h }, { hostkey: h }],
      ),
    ];
    for (const [env, want] of cases) {
      const r = await erlangClient("echo ok", { env });
      expect(r.status, `${JSON.stringify(env)}: ${r.err} ${r.out.toString()}`).toBe(0);
      expect(r.out.toString()).toBe("ok\n");
      expect(agreed(r.err), JSON.stringify(env)).toMatchObject(want);
    }
  }, 120_000);

  itAsRoot([...tools], "a command's stdout, stderr and exit status; 3 MB through `cat` both ways intact", async () => {
    const r = await erlangClient("cat; echo err >&2; exit 42", { input: Buffer.from("some input\n") });
    expect(r.status, r.err).toBe(42);
    expect(r.out.toString()).toBe("some input\n");
    expect(r.err).toContain("err\n");
    const data = randomBytes(3_000_000);
    const b = await erlangClient("cat", { input: data });
    expect(b.status, b.err).toBe(0);
    expect(b.out.equals(data)).toBe(true);
  });
});

describe("our dbclient against Erlang/OTP's ssh daemon", () => {
  itAsRoot([...tools], "the host key verified from known_hosts, a command answered (the daemon upper-cases it)", async () => {
    const r = await dbclientToErlang(["hello erlang"], daemonHostKey);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("HELLO ERLANG");
    expect(r.stderr).not.toMatch(/Caution|skipping/);
  });

  itAsRoot([...tools], "a different key in known_hosts: refused before authentication, saying so", async () => {
    const other = opensshKeygen(join(work.dir, "other_hk"));
    const r = await dbclientToErlang(["hello"], readFileSync(`${other}.pub`, "utf8").trim().split(" ").slice(0, 2).join(" "));
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/host key mismatch/i);
  });
});
