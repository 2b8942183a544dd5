import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itWithPeers } from "./helpers/peers.js";
import { opensshKeygen, OURS, privateScratch, run, runOurClient, scratch, startDebianDropbear, startOurDropbear, startSshd, type Server } from "./helpers/servers.js";

// Issue 3: key exchange with real peers, one algorithm at a time, up to the userauth service.

const work = scratch("dbts-transport-");
const servers: Server[] = [];

/** Make a host key with our dropbearkey. */
function ourKey(type: string, bits?: number, name = `host_${type}${bits ?? ""}`): string {
  const f = join(work.dir, name);
  const args = [OURS.dropbearkey, "-t", type, "-f", f];
  if (bits) args.push("-s", String(bits));
  const r = spawnSync(process.execPath, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`dropbearkey failed: ${r.stderr}`);
  return f;
}

let main: Server; // ed25519 + rsa + ecdsa-256 host keys
let ec384: Server;
let ec521: Server;

beforeAll(async () => {
  const keys = [ourKey("ed25519"), ourKey("rsa", 2048), ourKey("ecdsa", 256)];
  main = await startOurDropbear(keys.flatMap((k) => ["-r", k]));
  ec384 = await startOurDropbear(["-r", ourKey("ecdsa", 384)]);
  ec521 = await startOurDropbear(["-r", ourKey("ecdsa", 521)]);
  servers.push(main, ec384, ec521);
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  work.cleanup();
});

/** OpenSSH's ssh with one restriction, no auth wanted: its -vv log tells how far it got. */
async function sshTo(server: Server, opts: string[]): Promise<string> {
  const r = await run(
    PEERS.ssh,
    [
      "-vv",
      "-F",
      "/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "PreferredAuthentications=none",
      "-o",
      "ConnectTimeout=10",
      ...opts,
      "-p",
      String(server.port),
      "nobody@127.0.0.1",
      "true",
    ],
    { timeoutMs: 30_000 },
  );
  return r.stderr;
}

const reachedUserauth = /SSH2_MSG_SERVICE_ACCEPT received/;

describe("OpenSSH ssh -> our dropbear", () => {
  const kexes = [
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group14-sha256",
    "diffie-hellman-group16-sha512",
  ];
  for (const k of kexes) {
    itWithPeers(["ssh"], `kex ${k}`, async () => {
      const log = await sshTo(main, ["-o", `KexAlgorithms=${k}`]);
      expect(log).toContain(`kex: algorithm: ${k}`);
      expect(log).toMatch(reachedUserauth);
    });
  }

  const ciphers = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"];
  for (const c of ciphers) {
    itWithPeers(["ssh"], `cipher ${c}`, async () => {
      const log = await sshTo(main, ["-c", c]);
      expect(log).toContain(`kex: client->server cipher: ${c}`);
      expect(log).toContain(`kex: server->client cipher: ${c}`);
      expect(log).toMatch(reachedUserauth);
    });
  }

  const macs = ["hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"];
  for (const m of macs) {
    itWithPeers(["ssh"], `mac ${m}`, async () => {
      const log = await sshTo(main, ["-c", "aes128-ctr", "-m", m]);
      expect(log).toContain(`MAC: ${m}`);
      expect(log).toMatch(reachedUserauth);
    });
  }

  const hostkeys: Array<[string, () => Server]> = [
    ["ssh-ed25519", () => main],
    ["rsa-sha2-256", () => main],
    ["rsa-sha2-512", () => main],
    ["ecdsa-sha2-nistp256", () => main],
    ["ecdsa-sha2-nistp384", () => ec384],
    ["ecdsa-sha2-nistp521", () => ec521],
  ];
  for (const [h, srv] of hostkeys) {
    itWithPeers(["ssh"], `host key ${h}`, async () => {
      const log = await sshTo(srv(), ["-o", `HostKeyAlgorithms=${h}`]);
      expect(log).toContain(`kex: host key algorithm: ${h}`);
      expect(log).toMatch(reachedUserauth);
    });
  }

  itWithPeers(["ssh"], "strict kex is negotiated with OpenSSH (Terrapin)", async () => {
    const log = await sshTo(main, []);
    expect(log).toMatch(/resetting send seqnr|kex_strict/i);
    expect(log).toMatch(reachedUserauth);
  });
});

/** Our client against a server: it must get through kex to the userauth stage. */
async function ourClientTo(port: number, extra: string[] = []): Promise<string> {
  const home = scratch("dbts-home-");
  try {
    const r = await runOurClient(["-y", "-y", "-o", "BatchMode=yes", "-p", String(port), ...extra, "nobody@127.0.0.1", "true"], {
      env: { HOME: home.dir },
      timeoutMs: 30_000,
    });
    return r.stderr;
  } finally {
    home.cleanup();
  }
}

/** The client got past the transport: it is at the userauth stage, not at a kex error. */
const clientReachedUserauth = /No auth methods could be used/;
const kexFailure = /No matching algo|Bad hostkey signature|Integrity error|Error decrypting|Bad packet|Connect failed/;

describe("our dbclient -> OpenSSH sshd restricted to one algorithm", () => {
  const sd = scratch("dbts-sshd-");
  afterAll(() => sd.cleanup());
  const cases: Array<[string, string]> = [
    ["KexAlgorithms", "sntrup761x25519-sha512@openssh.com"],
    ["KexAlgorithms", "curve25519-sha256"],
    ["KexAlgorithms", "curve25519-sha256@libssh.org"],
    ["KexAlgorithms", "ecdh-sha2-nistp256"],
    ["KexAlgorithms", "ecdh-sha2-nistp384"],
    ["KexAlgorithms", "ecdh-sha2-nistp521"],
    ["KexAlgorithms", "diffie-hellman-group14-sha256"],
    ["KexAlgorithms", "diffie-hellman-group16-sha512"],
    ["Ciphers", "chacha20-poly1305@openssh.com"],
    ["Ciphers", "aes128-gcm@openssh.com"],
    ["Ciphers", "aes256-gcm@openssh.com"],
    ["Ciphers", "aes128-ctr"],
    ["Ciphers", "aes256-ctr"],
    ["MACs", "hmac-sha2-256"],
    ["MACs", "hmac-sha2-512"],
    ["MACs", "hmac-sha2-256-etm@openssh.com"],
    ["MACs", "hmac-sha2-512-etm@openssh.com"],
    ["HostKeyAlgorithms", "ssh-ed25519"],
    ["HostKeyAlgorithms", "ecdsa-sha2-nistp256"],
    ["HostKeyAlgorithms", "rsa-sha2-256"],
    ["HostKeyAlgorithms", "rsa-sha2-512"],
  ];
  for (const [key, value] of cases) {
    itWithPeers(["sshd"], `${key} ${value}`, async () => {
      // A MAC only matters with a non-AEAD cipher.
      const extra = key === "MACs" ? ["Ciphers aes128-ctr"] : [];
      const server = await startSshd(sd.dir, [`${key} ${value}`, ...extra]);
      try {
        const err = await ourClientTo(server.port);
        expect(err).not.toMatch(kexFailure);
        expect(err).toMatch(clientReachedUserauth);
        // sshd saw the transport come up and a userauth request arrive.
        await expect.poll(() => server.log(), { timeout: 5000 }).toMatch(/userauth-request for user nobody/);
        if (key === "KexAlgorithms") expect(server.log()).toContain(`kex: algorithm: ${value}`);
        if (key === "HostKeyAlgorithms") expect(server.log()).toContain(`kex: host key algorithm: ${value}`);
      } finally {
        await server.stop();
      }
    });
  }
});

describe("our dbclient -> Debian's dropbear", () => {
  itWithPeers(["dropbear", "dropbearkey"], "default algorithms", async () => {
    const hk = join(work.dir, "debian_hk");
    spawnSync(PEERS.dropbearkey, ["-t", "ed25519", "-f", hk]);
    const server = await startDebianDropbear(["-r", hk]);
    servers.push(server);
    const err = await ourClientTo(server.port);
    expect(err).not.toMatch(kexFailure);
    expect(err).toMatch(clientReachedUserauth);
  });
});

describe("ours <-> ours", () => {
  for (const k of ["mlkem768x25519-sha256", "sntrup761x25519-sha512", "curve25519-sha256", "ecdh-sha2-nistp384", "diffie-hellman-group16-sha512"]) {
    itWithPeers([], `kex ${k}`, async () => {
      const err = await ourClientTo(main.port, ["-vvv", "-o", `KexAlgorithms=${k}`]);
      expect(err).toContain(`kex algo ${k}`);
      expect(err).not.toMatch(/Exited: |Integrity error|Bad hostkey signature/);
      expect(err).toMatch(clientReachedUserauth);
    });
  }
});

describe("compression (zlib@openssh.com, delayed until after auth)", () => {
  const cz = privateScratch("zlib-");
  const user = userInfo().username;
  let keyfile = "";
  let authdir = "";
  beforeAll(() => {
    keyfile = join(cz.dir, "id");
    opensshKeygen(keyfile);
    authdir = join(cz.dir, "auth");
    mkdirSync(authdir, { mode: 0o700 });
    writeFileSync(join(authdir, "authorized_keys"), readFileSync(`${keyfile}.pub`), { mode: 0o600 });
  });
  afterAll(() => cz.cleanup());

  itWithPeers(["ssh", "ssh-keygen"], "OpenSSH ssh -C: our server compresses what it sends once the user is in", async () => {
    const s = await startOurDropbear(["-r", ourKey("ed25519", undefined, "zlib_hk"), "-D", authdir]);
    servers.push(s);
    const r = await run(
      PEERS.ssh,
      ["-v", "-C", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-i", keyfile, "-p", String(s.port), `${user}@127.0.0.1`, "true"],
      { timeoutMs: 20_000 },
    );
    expect(r.stderr).toMatch(/server->client cipher: \S+ MAC: \S+ compression: zlib@openssh.com/);
    expect(r.stderr).toMatch(/client->server cipher: \S+ MAC: \S+ compression: none/);
    // Packets after auth arrive compressed and ssh reads them.
    expect(r.stderr).toMatch(/Authenticated to 127\.0\.0\.1/);
    expect(r.stderr).toMatch(/channel 0: (open failed|free)|Exit status|exit-status/);
  });

  itWithPeers(["sshd", "ssh-keygen"], "our dbclient -o Compression=yes: compresses both ways with sshd after auth", async () => {
    const sd = scratch("dbts-zlibsshd-");
    try {
      const server = await startSshd(sd.dir, [`AuthorizedKeysFile ${join(authdir, "authorized_keys")}`, "Compression yes"]);
      try {
        const home = scratch("dbts-home-");
        const r = await runOurClient(["-y", "-y", "-o", "Compression=yes", "-i", keyfile, "-p", String(server.port), `${user}@127.0.0.1`, "true"], { env: { HOME: home.dir }, timeoutMs: 20_000 });
        home.cleanup();
        expect(r.stderr).not.toMatch(/zlib error|Integrity error|Bad packet/);
        await expect.poll(() => server.log(), { timeout: 5000 }).toMatch(/Accepted publickey/);
        expect(server.log()).toMatch(/compression: zlib@openssh.com/);
      } finally {
        await server.stop();
      }
    } finally {
      sd.cleanup();
    }
  });
});
