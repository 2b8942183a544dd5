import { randomBytes } from "node:crypto";
import { chownSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { opensshKeygen, run, scratch, startOurDropbearWithHostKeys, type RunResult, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// libssh2 (Debian 12's 1.10, through curl's sftp:// and scp://) against our dropbear: a fourth
// client implementation, the one behind curl, git's and PHP's SSH and many embedded tools.
// libssh2 1.10 signs with an RSA key only as "ssh-rsa" (SHA-1), which Dropbear 2026.94 does not
// build; such a request must be refused like any unknown algorithm so the client moves on.

const USER = "dbtslibssh2";
const PASSWORD = "libssh2-pw-9";
const work = scratch("dbts-libssh2-");
const user = { home: "", uid: 0, gid: 0 };
const keys = { ed25519: "", ecdsa: "", rsa: "" };
let hostPin = "";
let ours: Server;
const tools = ["curl", "ssh-keygen"] as const;

/** curl to our server as USER with `key` (none: password only), the host key pinned. */
function curl(url: string, o: { key?: string | null; password?: string; pin?: string; args?: string[] } = {}): Promise<RunResult> {
  const key = o.key === undefined ? keys.ed25519 : o.key;
  return run(PEERS.curl, [
    "-sS",
    "--hostpubsha256",
    o.pin ?? hostPin,
    "-u",
    `${USER}:${o.password ?? ""}`,
    ...(key === null ? [] : ["--key", key, "--pubkey", `${key}.pub`]),
    ...(o.args ?? []),
    `${url.split("://")[0]}://127.0.0.1:${ours.port}/${url.split("://")[1]}`,
  ], { timeoutMs: 60_000 });
}

/** A file of `size` random bytes in the user's home, owned by them. */
function userFile(name: string, size: number): Buffer {
  const data = randomBytes(size);
  const path = join(user.home, name);
  writeFileSync(path, data);
  chownSync(path, user.uid, user.gid);
  return data;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) return;
  ({ home: user.home, uid: user.uid, gid: user.gid } = addTestUser(USER, { password: PASSWORD }));
  keys.ed25519 = opensshKeygen(join(work.dir, "id_ed25519"));
  keys.ecdsa = opensshKeygen(join(work.dir, "id_ecdsa"), { type: "ecdsa" });
  keys.rsa = opensshKeygen(join(work.dir, "id_rsa"), { type: "rsa" });
  authorizeKeys(user, `${keys.ed25519}.pub`, `${keys.ecdsa}.pub`, `${keys.rsa}.pub`);
  const started = await startOurDropbearWithHostKeys(work.dir, ["ed25519"]);
  ours = started.server;
  // curl's --hostpubsha256 takes the SHA256 fingerprint's base64 without its prefix.
  const fp = await run(PEERS["ssh-keygen"], ["-l", "-f", `${started.hostKeys[0]!}.pub`]);
  hostPin = fp.stdout.split(" ")[1]!.replace(/^SHA256:/, "");
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  if (process.getuid?.() === 0) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("curl (libssh2) against our dropbear", () => {
  itAsRoot([...tools], "sftp: a 3 MB file down and a 2 MB file up intact, with Ed25519 and ECDSA keys", async () => {
    for (const key of [keys.ed25519, keys.ecdsa]) {
      const down = userFile("down.bin", 3_000_000);
      const got = join(work.dir, "got.bin");
      const r = await curl("sftp://~/down.bin", { key, args: ["-o", got] });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(got).equals(down)).toBe(true);
      const up = randomBytes(2_000_000);
      const src = join(work.dir, "up.bin");
      writeFileSync(src, up);
      const u = await curl("sftp://~/up.bin", { key, args: ["-T", src] });
      expect(u.status, u.stderr).toBe(0);
      expect(readFileSync(join(user.home, "up.bin")).equals(up)).toBe(true);
    }
    expect(ours.log()).toMatch(new RegExp(`Pubkey auth succeeded for '${USER}' with ecdsa-sha2-nistp256 key`));
  });

  itAsRoot([...tools], "scp: a file down and one up intact; a directory listed over sftp", async () => {
    const down = userFile("scp-down.bin", 1_500_000);
    const got = join(work.dir, "scp-got.bin");
    const r = await curl("scp://~/scp-down.bin", { args: ["-o", got] });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(got).equals(down)).toBe(true);
    const src = join(work.dir, "scp-up.bin");
    const up = randomBytes(1_000_000);
    writeFileSync(src, up);
    const u = await curl("scp://~/scp-up.bin", { args: ["-T", src] });
    expect(u.status, u.stderr).toBe(0);
    expect(readFileSync(join(user.home, "scp-up.bin")).equals(up)).toBe(true);
    const ls = await curl("sftp://~/");
    expect(ls.status, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/ scp-down\.bin\n/);
  });

  itAsRoot([...tools], "the host key is the one pinned: another pin is refused before authentication", async () => {
    const r = await curl("sftp://~/", { pin: Buffer.alloc(32, 7).toString("base64").replace(/=+$/, "") });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe("");
  });

  itAsRoot([...tools], "an RSA key it can only sign with SHA-1 is refused as an algorithm, and the password after it logs in", async () => {
    const before = ours.log().length;
    const r = await curl("sftp://~/", { key: keys.rsa, password: PASSWORD });
    expect(r.status, r.stderr).toBe(0);
    const log = ours.log().slice(before);
    expect(log).toMatch(new RegExp(`Password auth succeeded for '${USER}'`));
    expect(log).not.toMatch(/Non-matching signing type/);
    // Without the password it is an authentication failure, not a dropped connection.
    const k = await curl("sftp://~/", { key: keys.rsa });
    expect(k.status).toBe(67); // CURLE_LOGIN_DENIED
  });
});
