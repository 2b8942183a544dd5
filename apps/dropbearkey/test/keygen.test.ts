// Key generation and -y through the real built bin (run `npx tsc -b` first), checked against
// Debian's dropbearkey and OpenSSH's ssh-keygen where they are installed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEERS, itWithPeers } from "../../../tests/helpers/peers.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const bin = join(root, "apps/dropbearkey/bin/dropbearkey");
let dir = "";

const ours = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: "utf8" });
const theirs = (prog: string, ...args: string[]) => spawnSync(prog, args, { cwd: dir, encoding: "utf8" });

/** "Public key portion is:", the line, the fingerprint: the stdout of a generation or -y. */
function parseOutput(stdout: string): { line: string; fingerprint: string } {
  const m = /^Public key portion is:\n(.*)\nFingerprint: (SHA256:[A-Za-z0-9+/]{43})\n$/.exec(stdout);
  expect(m, stdout).not.toBeNull();
  return { line: m![1], fingerprint: m![2] };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dropbearkey-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("dropbearkey generates keys", () => {
  const cases: { args: string[]; name: string; bits: number; typetext: string }[] = [
    { args: [], name: "ssh-ed25519", bits: 256, typetext: "ed25519" },
    { args: ["-t", "ed25519", "-s", "256"], name: "ssh-ed25519", bits: 256, typetext: "ed25519" },
    { args: ["-t", "ecdsa"], name: "ecdsa-sha2-nistp256", bits: 256, typetext: "ecdsa" },
    { args: ["-t", "ecdsa", "-s", "384"], name: "ecdsa-sha2-nistp384", bits: 384, typetext: "ecdsa" },
    { args: ["-t", "ecdsa", "-s", "521"], name: "ecdsa-sha2-nistp521", bits: 521, typetext: "ecdsa" },
    { args: ["-t", "rsa"], name: "ssh-rsa", bits: 2048, typetext: "rsa" },
    { args: ["-t", "rsa", "-s", "1024"], name: "ssh-rsa", bits: 1024, typetext: "rsa" },
  ];

  it.each(cases)("$args: key, .pub file and Dropbear's messages", ({ args, name, bits, typetext }) => {
    const file = `k-${args.join("_") || "default"}`;
    const r = ours(...args, "-f", file, "-C", "me@example");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(`Generating ${bits} bit ${typetext} key, this may take a while...\n`);
    const { line, fingerprint } = parseOutput(r.stdout);
    expect(line).toMatch(new RegExp(`^${name} [A-Za-z0-9+/]+=* me@example$`));

    const key = join(dir, file);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${key}.pub`, "utf8")).toBe(`${line}\n`);
    expect(statSync(`${key}.pub`).mode & 0o777).toBe(0o600);
    // The temporary file the key was written to first is gone.
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);

    const y = ours("-y", "-f", file);
    expect(y.status).toBe(0);
    expect(y.stderr).toBe("");
    expect(parseOutput(y.stdout)).toEqual({
      line: line.replace(/ me@example$/, ` ${userInfo().username}@${hostname()}`),
      fingerprint,
    });
  });

  it("an RSA size that is a multiple of 8 but not of 16 gives a key of exactly that size (C's loops for ever)", () => {
    // C's gen_rsa_priv_key draws two primes of size/16 bytes each, so for -s 1032 the
    // modulus never has 1032 bits and it retries without end (docs/deviations.md, Tools).
    const r = ours("-t", "rsa", "-s", "1032", "-f", "k-rsa-1032");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe("Generating 1032 bit rsa key, this may take a while...\n");
    const blob = Buffer.from(parseOutput(r.stdout).line.split(" ")[1]!, "base64");
    let off = 0;
    const field = (): Buffer => {
      const len = blob.readUInt32BE(off);
      const f = blob.subarray(off + 4, off + 4 + len);
      off += 4 + len;
      return f;
    };
    expect(field().toString()).toBe("ssh-rsa");
    field(); // e
    const n = field();
    expect(BigInt(`0x${n.toString("hex")}`).toString(2).length).toBe(1032);
  });

  it("without -C the comment is user@host; an empty -C leaves a trailing space", () => {
    const r = ours("-f", "k-nocomment");
    expect(parseOutput(r.stdout).line).toMatch(new RegExp(` ${userInfo().username}@${hostname()}$`));
    const e = ours("-f", "k-emptycomment", "-C", "");
    expect(parseOutput(e.stdout).line).toMatch(/^ssh-ed25519 \S+ $/);
  });

  it("a -C comment that is not UTF-8 keeps its bytes, on stdout and in the .pub file (as C's)", () => {
    // "café" in Latin-1: Node cannot pass 0xe9 alone as an argument, so the shell's printf does.
    const r = spawnSync("/bin/sh", ["-c", 'exec "$@" -f k-latin1 -C "$(printf "caf\\351")"', "sh", process.execPath, bin], { cwd: dir });
    expect(r.status, r.stderr.toString()).toBe(0);
    const comment = Buffer.from([0x63, 0x61, 0x66, 0xe9]);
    const pub = readFileSync(join(dir, "k-latin1.pub"));
    expect(pub.subarray(pub.length - 6)).toEqual(Buffer.concat([Buffer.from(" "), comment, Buffer.from("\n")]));
    expect(r.stdout.includes(pub)).toBe(true);
  });

  it("never overwrites a key file: Dropbear's messages, status 1, file untouched", () => {
    expect(ours("-f", "k-exists").status).toBe(0);
    const before = readFileSync(join(dir, "k-exists"));
    const pubBefore = readFileSync(join(dir, "k-exists.pub"));
    const r = ours("-t", "ecdsa", "-f", "k-exists");
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      "Generating 256 bit ecdsa key, this may take a while...\n" +
        "Failed moving key file to k-exists: File exists\n" +
        "Exited: Failed to generate key.\n\n",
    );
    expect(readFileSync(join(dir, "k-exists"))).toEqual(before);
    expect(readFileSync(join(dir, "k-exists.pub"))).toEqual(pubBefore);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  it("an existing .pub file is left alone and only logged; the key is still made", () => {
    writeFileSync(join(dir, "k-pubexists.pub"), "mine\n");
    const r = ours("-f", "k-pubexists");
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(
      "Generating 256 bit ed25519 key, this may take a while...\n" +
        "Save public key to k-pubexists.pub failed: File exists\n",
    );
    parseOutput(r.stdout);
    expect(existsSync(join(dir, "k-pubexists"))).toBe(true);
    expect(readFileSync(join(dir, "k-pubexists.pub"), "utf8")).toBe("mine\n");
  });

  it("refuses bad sizes with Dropbear's messages before writing anything", () => {
    const cases: [string[], string][] = [
      [["-t", "ed25519", "-s", "384"], "Exited: Ed25519 keys have a fixed size of 256 bits\n\n"],
      [["-t", "ed25519", "-s", "0"], "Exited: Ed25519 keys have a fixed size of 256 bits\n\n"],
      [["-t", "rsa", "-s", "1000"], "Exited: Bits must satisfy 1024 <= bits <= 4096, and be a multiple of 8\n\n"],
      [["-t", "rsa", "-s", "4104"], "Exited: Bits must satisfy 1024 <= bits <= 4096, and be a multiple of 8\n\n"],
      [["-t", "rsa", "-s", "1028"], "Exited: Bits must satisfy 1024 <= bits <= 4096, and be a multiple of 8\n\n"],
      [["-t", "rsa", "-s", "-1"], "Exited: Bits must satisfy 1024 <= bits <= 4096, and be a multiple of 8\n\n"],
      [["-t", "rsa", "-s", "x"], "Bits must be an integer\n"],
      [
        ["-t", "ecdsa", "-s", "300"],
        "Generating 300 bit ecdsa key, this may take a while...\nExited: Key size 300 isn't valid. Try 256 384 521 \n",
      ],
      [
        ["-t", "ecdsa", "-s", "-1"],
        "Generating 4294967295 bit ecdsa key, this may take a while...\nExited: Key size -1 isn't valid. Try 256 384 521 \n",
      ],
    ];
    for (const [args, stderr] of cases) {
      const r = ours(...args, "-f", "k-bad");
      expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status: 1, stdout: "", stderr });
    }
    expect(readdirSync(dir).filter((f) => f.startsWith("k-bad"))).toEqual([]);
  });

  it("-y on a file that holds no key: Dropbear's messages and statuses", () => {
    writeFileSync(join(dir, "not-a-key"), Buffer.from("\0\0\0\x03abc", "latin1"));
    const bad = ours("-y", "-f", "not-a-key");
    expect([bad.status, bad.stdout, bad.stderr]).toEqual([255, "", "Bad key in 'not-a-key'\n"]);
    writeFileSync(join(dir, "empty"), "");
    const empty = ours("-y", "-f", "empty");
    expect([empty.status, empty.stdout, empty.stderr]).toEqual([1, "", "Exited: Bad buf_getptr\n"]);
  });
});

describe("dropbearkey against Debian's dropbearkey and ssh-keygen", () => {
  itWithPeers(["dropbearkey"], "our -y prints exactly what Debian's -y prints, for our keys and for theirs", () => {
    for (const type of ["ed25519", "ecdsa", "rsa"]) {
      for (const [maker, file] of [
        ["ours", `y-ours-${type}`],
        ["theirs", `y-theirs-${type}`],
      ] as const) {
        const made =
          maker === "ours" ? ours("-t", type, "-f", file) : theirs(PEERS.dropbearkey, "-t", type, "-f", file);
        expect(made.status).toBe(0);
        const a = ours("-y", "-f", file);
        const b = theirs(PEERS.dropbearkey, "-y", "-f", file);
        expect({ file, status: a.status, stdout: a.stdout, stderr: a.stderr }).toEqual({
          file,
          status: b.status,
          stdout: b.stdout,
          stderr: b.stderr,
        });
        // Generation printed the same line and fingerprint as -y does afterwards.
        expect(parseOutput(made.stdout)).toEqual(parseOutput(a.stdout));
      }
    }
  });

  itWithPeers(["dropbearkey"], "truncated key files fail the same way in both", () => {
    ours("-t", "rsa", "-f", "trunc-src");
    const whole = readFileSync(join(dir, "trunc-src"));
    for (const len of [0, 3, 4, 11, 19, 20, 40, 100, 300, whole.length - 1]) {
      writeFileSync(join(dir, "trunc"), whole.subarray(0, len));
      const a = ours("-y", "-f", "trunc");
      const b = theirs(PEERS.dropbearkey, "-y", "-f", "trunc");
      expect({ len, status: a.status, stderr: a.stderr }).toEqual({ len, status: b.status, stderr: b.stderr });
    }
  });

  itWithPeers(["dropbearkey"], "bad sizes give Debian's messages and statuses", () => {
    for (const args of [
      ["-t", "ed25519", "-s", "384"],
      ["-t", "rsa", "-s", "1000"],
      ["-t", "rsa", "-s", "5000"],
      ["-t", "rsa", "-s", "abc"],
      ["-t", "ecdsa", "-s", "300"],
      ["-t", "ecdsa", "-s", "-1"],
    ]) {
      const a = ours(...args, "-f", "never");
      const b = theirs(PEERS.dropbearkey, ...args, "-f", "never");
      expect({ args, status: a.status, stderr: a.stderr }).toEqual({ args, status: b.status, stderr: b.stderr });
    }
  });

  itWithPeers(["ssh-keygen"], "OpenSSH accepts our .pub files: same fingerprint", () => {
    for (const type of ["ed25519", "ecdsa", "rsa"]) {
      const r = ours("-t", type, "-f", `fp-${type}`);
      const { fingerprint } = parseOutput(r.stdout);
      const l = theirs(PEERS["ssh-keygen"], "-l", "-E", "sha256", "-f", `fp-${type}.pub`);
      expect(l.status).toBe(0);
      expect(l.stdout.split(" ")[1]).toBe(fingerprint);
    }
  });
});
