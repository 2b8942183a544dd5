import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEERS, itWithPeers } from "./helpers/peers.js";
import { ourKeygen, run, runOurClient, scratch, startOurDropbear, startSshd, type RunResult, type Server } from "./helpers/servers.js";

// Issue 9: known_hosts as OpenSSH users have it. Hashed |1|salt|hmac entries (as ssh writes
// them with HashKnownHosts), [host]:port for ports other than 22, and no trust on first use of
// a key of another type when the host already has a known key: dbclient asks for the known
// type first and refuses any other as a changed key, leaving the file as it was.

const work = scratch("dbts-knownhosts-");
let ours: Server;
let sshd: Server | null = null;
const sshdDir = join(work.dir, "sshd");

function key(name: string, type: string): string {
  const f = join(work.dir, name);
  ourKeygen(f, type);
  return f;
}

/** "type base64" of a .pub file (ours or OpenSSH's), without its comment. */
function pub(file: string): string {
  return readFileSync(`${file}.pub`, "utf8").split(" ").slice(0, 2).join(" ");
}

/** An OpenSSH hashed host field for `name`, made here the way ssh-keygen -H makes it. */
function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
}

let n = 0;
/** A fresh HOME whose ~/.ssh/known_hosts holds `lines`. */
function home(lines: string[]): string {
  const h = join(work.dir, `home${++n}`);
  mkdirSync(join(h, ".ssh"), { recursive: true });
  writeFileSync(join(h, ".ssh", "known_hosts"), lines.map((l) => `${l}\n`).join(""));
  return h;
}

function knownHosts(h: string): string {
  return readFileSync(join(h, ".ssh", "known_hosts"), "utf8");
}

/** Our client in BatchMode (an unknown key is never accepted), as nobody, no keys. */
function client(h: string, port: number, ...args: string[]): Promise<RunResult> {
  return runOurClient(["-o", "BatchMode=yes", ...args, "-p", String(port), "nobody@127.0.0.1", "true"], { env: { HOME: h }, timeoutMs: 20_000 });
}

/** The host key check passed: the client went on to authentication (and had nothing to offer). */
function expectVerified(r: RunResult): void {
  expect(r.stderr).not.toMatch(/not in the trusted hosts file|mismatch|revoked|accepted/);
  expect(r.stderr).toMatch(/No auth methods could be used/);
}

function expectRefused(r: RunResult, h: string, before: string): void {
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/host key mismatch for 127\.0\.0\.1 !\nFingerprint is SHA256:\S+\nExpected /);
  expect(r.stderr).not.toMatch(/No auth methods/);
  expect(knownHosts(h)).toBe(before);
}

const edKey = key("hk_ed25519", "ed25519");
const rsaKey = key("hk_rsa", "rsa");
const ecKey = key("hk_ecdsa", "ecdsa");

beforeAll(async () => {
  ours = await startOurDropbear(["-r", edKey, "-r", rsaKey, "-r", ecKey]);
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  await sshd?.stop();
  work.cleanup();
});

async function theSshd(): Promise<Server> {
  if (sshd === null) {
    mkdirSync(sshdDir, { recursive: true });
    sshd = await startSshd(sshdDir);
  }
  return sshd;
}

/** ssh writes a hashed entry for [127.0.0.1]:port itself (HashKnownHosts), as a user's ssh would. */
async function opensshHashedHome(port: number): Promise<string> {
  const h = home([]);
  const file = join(h, ".ssh", "known_hosts");
  const r = await run(
    PEERS.ssh,
    ["-F", "/dev/null", "-o", "HashKnownHosts=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", `UserKnownHostsFile=${file}`, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "PreferredAuthentications=none", "-p", String(port), "nobody@127.0.0.1", "true"],
    { timeoutMs: 20_000 },
  );
  const kh = knownHosts(h);
  expect(kh, r.stderr).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 AAAA/);
  expect(kh).not.toContain("127.0.0.1");
  return h;
}

describe("known_hosts entries as OpenSSH writes them", () => {
  itWithPeers(["ssh"], "a hashed entry written by ssh (HashKnownHosts) verifies against our dropbear", async () => {
    const h = await opensshHashedHome(ours.port);
    const before = knownHosts(h);
    expectVerified(await client(h, ours.port));
    expect(knownHosts(h)).toBe(before);
  });

  itWithPeers(["ssh", "sshd", "ssh-keygen"], "a hashed entry written by ssh verifies against sshd", async () => {
    const s = await theSshd();
    const h = await opensshHashedHome(s.port);
    const before = knownHosts(h);
    expectVerified(await client(h, s.port));
    expect(knownHosts(h)).toBe(before);
  });

  it("a [127.0.0.1]:PORT entry verifies; in a pattern list and hashed too", async () => {
    expectVerified(await client(home([`[127.0.0.1]:${ours.port} ${pub(edKey)}`]), ours.port));
    expectVerified(await client(home([`other.example,[127.0.0.1]:${ours.port} ${pub(edKey)} a comment`]), ours.port));
    expectVerified(await client(home([`${hashed(`[127.0.0.1]:${ours.port}`)} ${pub(edKey)}`]), ours.port));
  });

  it("an entry for the same host on another port is not this server's; the bare host (as Dropbear writes it) still is", async () => {
    // [host]:otherport with a different key: neither matched nor a mismatch, so the host is unknown.
    const other = key("hk_other", "ed25519");
    const r = await client(home([`[127.0.0.1]:${ours.port + 1} ${pub(other)}`]), ours.port);
    expect(r.stderr).toMatch(/is not in the trusted hosts file/);
    expect(r.stderr).not.toMatch(/mismatch/);
    // A known_hosts written by Dropbear (bare host name, whatever the port) keeps verifying.
    expectVerified(await client(home([`127.0.0.1 ${pub(edKey)}`]), ours.port));
  });

  it("a new host is recorded as [127.0.0.1]:PORT, and that entry verifies next time", async () => {
    const h = home([]);
    const first = await client(h, ours.port, "-y");
    expect(first.stderr).toMatch(/key accepted unconditionally/);
    expect(knownHosts(h)).toBe(`[127.0.0.1]:${ours.port} ${pub(edKey)}\n`);
    expectVerified(await client(h, ours.port));
  });

  it("a file without its last newline gets one before the new entry", async () => {
    const h = home([]);
    writeFileSync(join(h, ".ssh", "known_hosts"), "# hand-edited");
    expect((await client(h, ours.port, "-y")).stderr).toMatch(/key accepted unconditionally/);
    expect(knownHosts(h)).toBe(`# hand-edited\n[127.0.0.1]:${ours.port} ${pub(edKey)}\n`);
  });

  it("read as Dropbear reads it: a line of 10000 bytes or more ends the file, so /dev/zero or a huge file is never read whole", async () => {
    const long = home([`[127.0.0.1]:${ours.port} ${pub(edKey)}`, "x".repeat(10_000), `[127.0.0.1]:${ours.port} ${pub(rsaKey)}`]);
    expectVerified(await client(long, ours.port));
    const zero = home([]);
    rmSync(join(zero, ".ssh", "known_hosts"));
    symlinkSync("/dev/zero", join(zero, ".ssh", "known_hosts"));
    const r = await client(zero, ours.port, "-y");
    expect(r.stderr).toMatch(/key accepted unconditionally/);
    expect(r.stderr).toMatch(/No auth methods could be used/);
  });

  it("a HOME where ~/.ssh cannot be made: one warning in C's words (strerror), then the key is asked about", async () => {
    // HOME under a regular file: mkdir fails with ENOTDIR, even for root.
    const file = join(work.dir, "not-a-dir");
    writeFileSync(file, "");
    const r = await client(join(file, "home"), ours.port, "-y");
    expect(r.stderr).toContain(`Warning: failed creating ${file}/home/.ssh: Not a directory\n`);
    // Dropbear goes straight to asking: no "Failed to open" line after the warning.
    expect(r.stderr).not.toMatch(/Failed to open/);
    expect(r.stderr).toMatch(/key accepted unconditionally/);
  });

  it("@cert-authority lines are skipped; an @revoked key is refused even when listed as known", async () => {
    const ca = home([`@cert-authority * ${pub(key("ca", "ed25519"))}`, `[127.0.0.1]:${ours.port} ${pub(edKey)}`]);
    expectVerified(await client(ca, ours.port));
    const h = home([`@revoked * ${pub(edKey)}`, `[127.0.0.1]:${ours.port} ${pub(edKey)}`]);
    const before = knownHosts(h);
    const r = await client(h, ours.port, "-y");
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ssh-ed25519 host key for 127\.0\.0\.1 is marked as revoked/);
    expect(knownHosts(h)).toBe(before);
  });
});

describe("a changed host key", () => {
  it("a different key of the same type is refused (even with -y) and the file is left alone", async () => {
    const h = home([`${hashed(`[127.0.0.1]:${ours.port}`)} ${pub(key("hk_changed", "ed25519"))}`]);
    const before = knownHosts(h);
    expectRefused(await client(h, ours.port, "-y"), h, before);
  });

  it("a key of another type than the known one is refused as a changed key, never added", async () => {
    // Only ed25519 on this server; known_hosts knows the host by an ECDSA key.
    const s = await startOurDropbear(["-r", key("hk_only_ed", "ed25519")]);
    try {
      const h = home([`[127.0.0.1]:${s.port} ${pub(ecKey)}`]);
      const before = knownHosts(h);
      const r = await client(h, s.port, "-y");
      expectRefused(r, h, before);
      expect(r.stderr).toMatch(/Expected ecdsa-sha2-nistp256 SHA256:\S+/);
    } finally {
      await s.stop();
    }
  });
});

describe("the known key's type is asked for first", () => {
  it("a known RSA key: dbclient negotiates RSA though it prefers ed25519 and the server has both", async () => {
    expectVerified(await client(home([`[127.0.0.1]:${ours.port} ${pub(rsaKey)}`]), ours.port));
  });

  it("a known ed25519 key: dbclient negotiates ed25519 though -o HostKeyAlgorithms puts ECDSA first", async () => {
    // Unknown host: the option's first choice is what the server signs with (and what is recorded).
    const fresh = home([]);
    await client(fresh, ours.port, "-y", "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256,ssh-ed25519");
    expect(knownHosts(fresh)).toBe(`[127.0.0.1]:${ours.port} ${pub(ecKey)}\n`);
    expectVerified(await client(home([`[127.0.0.1]:${ours.port} ${pub(edKey)}`]), ours.port, "-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256,ssh-ed25519"));
  });

  itWithPeers(["sshd", "ssh-keygen"], "against sshd: known RSA and known ECDSA keys are each negotiated", async () => {
    const s = await theSshd();
    expectVerified(await client(home([`[127.0.0.1]:${s.port} ${pub(join(sshdDir, "ssh_host_rsa_key"))}`]), s.port));
    expectVerified(await client(home([`[127.0.0.1]:${s.port} ${pub(join(sshdDir, "ssh_host_ecdsa_key"))}`]), s.port));
  });
});
