import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { expectCommandStreams } from "./helpers/interop.js";
import { IS_ROOT, PEERS, itNetSsh } from "./helpers/peers.js";
import { opensshKeygen, publicKeyLine, runBytes, scratch, startOurDropbearWithHostKeys, startSshAgent, type BytesResult, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Ruby's Net::SSH (Debian's ruby-net-ssh 7.0.1, with ruby-net-sftp and ruby-net-scp), the SSH of
// Vagrant, Capistrano and Chef, as a client of our dropbear: tests/helpers/netssh-peer.rb. Its
// Debian build has no curve25519 (that needs the x25519 gem) nor chacha20-poly1305 or AES-GCM,
// so it meets us on ECDH or group14-sha256 with AES-CTR. Net::SSH 7.0.1 under OpenSSL 3 cannot
// load RSA or ECDSA keys in the openssh-key-v1 format (nor sign with them: "rsa#set_key= is
// incompatible with OpenSSL 3.0"), whatever the server, so those user keys are given as PEM.
// Not tested: keyboard-interactive, which Dropbear does not offer (C Dropbear neither).

const USER = "dbtsnetssh";
const PASSWORD = "netssh-interop-pw-6";
const PEER = fileURLToPath(new URL("./helpers/netssh-peer.rb", import.meta.url));
const work = scratch("dbts-netssh-");
const knownHosts = join(work.dir, "known_hosts");
const agentSock = join(work.dir, "agent.sock");
const keys: Record<string, string> = {};
let ours: Server;
let agent: { kill: () => boolean } | null = null;

/** netssh-peer.rb against our server: MODE with ARG and `input`, under the NETSSH_* settings in `env`. */
function netssh(mode: string, arg: string, o: { input?: Buffer | string; env?: Record<string, string> } = {}): Promise<BytesResult> {
  return runBytes(PEERS.ruby, [PEER, String(ours.port), USER, mode, arg], {
    env: { NETSSH_KNOWN_HOSTS: knownHosts, NETSSH_KEYS: keys.ed25519!, ...o.env },
    input: o.input ?? "",
  });
}

/** The JSON lines of a netssh-peer.rb run (Net::SSH 7.0.1 itself prints "REMOTE..." lines at remote forwards). */
function jsonLines(r: BytesResult): Record<string, unknown>[] {
  return r.out
    .toString()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  const user = addTestUser(USER, { password: PASSWORD });
  for (const type of ["ed25519", "ecdsa", "rsa"]) {
    keys[type] = opensshKeygen(join(work.dir, `id_${type}`), { type, comment: `netssh-${type}` });
    // Net::SSH 7.0.1 reads only PEM for RSA and ECDSA under OpenSSL 3 (see above).
    if (type !== "ed25519") spawnSync(PEERS["ssh-keygen"], ["-q", "-p", "-m", "PEM", "-N", "", "-f", keys[type]!]);
  }
  authorizeKeys(user, ...Object.values(keys).map((k) => `${k}.pub`));
  const started = await startOurDropbearWithHostKeys(work.dir, ["ed25519", "ecdsa", "rsa"]);
  ours = started.server;
  writeFileSync(knownHosts, started.hostKeys.map((k) => `[127.0.0.1]:${ours.port} ${publicKeyLine(`${k}.pub`)}\n`).join(""));
}, 60_000);

afterAll(async () => {
  agent?.kill();
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
});

describe("Ruby Net::SSH against our dropbear", () => {
  itNetSsh("each key exchange, host key, cipher and MAC both have; ECDSA and RSA user keys and a password", async () => {
    // Four connections between them force each algorithm and each way of logging in once.
    const cases: Record<string, string | string[]>[] = [
      { kex: "ecdh-sha2-nistp256", host_key: "ssh-ed25519", encryption: "aes128-ctr", hmac: "hmac-sha2-256", keys: [keys.ecdsa!], auth_methods: ["publickey"] },
      { kex: "ecdh-sha2-nistp384", host_key: "ecdsa-sha2-nistp256", encryption: "aes256-ctr", hmac: "hmac-sha2-512", keys: [keys.rsa!], auth_methods: ["publickey"] },
      { kex: "ecdh-sha2-nistp521", host_key: "rsa-sha2-256", encryption: "aes128-ctr", hmac: "hmac-sha2-256-etm@openssh.com", keys: [], auth_methods: ["password"], password: PASSWORD },
      { kex: "diffie-hellman-group14-sha256", host_key: "rsa-sha2-512", encryption: "aes256-ctr", hmac: "hmac-sha2-512-etm@openssh.com" },
    ];
    const r = await netssh("algos", JSON.stringify(cases));
    expect(r.status, r.err).toBe(0);
    const lines = jsonLines(r);
    expect(lines).toHaveLength(cases.length);
    cases.forEach((c, i) => {
      const got = lines[i]!;
      expect(got.out, `${JSON.stringify(c)}: ${JSON.stringify(got)}`).toBe("ok\n");
      for (const k of ["kex", "host_key", "encryption", "hmac"]) if (typeof c[k] === "string") expect(got[k]).toBe(c[k]);
    });
  });

  itNetSsh("a command's stdout, stderr and exit status; 3 MB through `cat` both ways intact", () =>
    expectCommandStreams((command, input) => netssh("exec", command, { input })),
  );

  itNetSsh("3 MB through `cat` with Net::SSH rekeying every 200 kB", async () => {
    const data = randomBytes(3_000_000);
    const r = await netssh("exec", "cat", { input: data, env: { NETSSH_REKEY_LIMIT: "200000" } });
    expect(r.status, r.err).toBe(0);
    expect(r.out.equals(data)).toBe(true);
  });

  itNetSsh("one session: agent forwarding, keepalives, 20 channels, exit-signal, local and remote forwards, SFTP and SCP", async () => {
    agent = await startSshAgent(agentSock);
    const added = spawnSync(PEERS["ssh-add"], ["-q", keys.ed25519!], { env: { SSH_AUTH_SOCK: agentSock } });
    expect(added.status, added.stderr.toString()).toBe(0);
    const r = await netssh("session", "", { env: { SSH_AUTH_SOCK: agentSock } });
    expect(r.status, r.err).toBe(0);
    expect(jsonLines(r)).toEqual([
      { agent: `${publicKeyLine(`${keys.ed25519!}.pub`)} netssh-ed25519\n`, agent_status: 0 },
      { channels: true, signal: "TERM" },
      { local: true, remote: true },
      { sftp: true },
      { scp: true },
    ]);
  });
});
