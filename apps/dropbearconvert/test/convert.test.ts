// Conversions through the real built bins (run `npx tsc -b` first), checked with OpenSSH's
// ssh-keygen and Debian's dropbearconvert/dropbearkey where they are installed.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEERS, itWithPeers } from "../../../tests/helpers/peers.js";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const convertBin = join(root, "apps/dropbearconvert/bin/dropbearconvert");
const keyBin = join(root, "apps/dropbearkey/bin/dropbearkey");
let dir = "";

const exec = (prog: string, ...args: string[]) => spawnSync(prog, args, { cwd: dir, encoding: "utf8" });
const convert = (...args: string[]) => exec(process.execPath, convertBin, ...args);
const dropbearkey = (...args: string[]) => exec(process.execPath, keyBin, ...args);

/** "type base64" of a Dropbear key file, as our dropbearkey -y prints it. */
function dropbearPub(file: string): string {
  const r = dropbearkey("-y", "-f", file);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split("\n")[1].split(" ").slice(0, 2).join(" ");
}

/** "type base64" of an OpenSSH private key file, as ssh-keygen -y derives it. */
function opensshPub(file: string): string {
  chmodSync(join(dir, file), 0o600);
  const r = exec(PEERS["ssh-keygen"], "-y", "-f", file);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split(" ").slice(0, 2).join(" ");
}

const TYPES = [
  { gen: ["-t", "ed25519"], keygen: ["-t", "ed25519"], name: "ssh-ed25519" },
  { gen: ["-t", "ecdsa", "-s", "256"], keygen: ["-t", "ecdsa", "-b", "256"], name: "ecdsa-sha2-nistp256" },
  { gen: ["-t", "ecdsa", "-s", "384"], keygen: ["-t", "ecdsa", "-b", "384"], name: "ecdsa-sha2-nistp384" },
  { gen: ["-t", "ecdsa", "-s", "521"], keygen: ["-t", "ecdsa", "-b", "521"], name: "ecdsa-sha2-nistp521" },
  { gen: ["-t", "rsa", "-s", "2048"], keygen: ["-t", "rsa", "-b", "2048"], name: "ssh-rsa" },
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "dropbearconvert-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("file names that are not UTF-8", () => {
  it("dropbearkey -f, -y -f and dropbearconvert both ways name their files by the bytes given, as C's", () => {
    // Node cannot pass 0xe9 alone as an argument: sh's printf makes each name.
    const sh = (script: string) => spawnSync("/bin/sh", ["-c", script, "sh", process.execPath, keyBin, convertBin], { cwd: dir });
    const k = `"$(printf 'k\\351')"`;
    expect(sh(`"$1" "$2" -t ed25519 -f ${k}`).status).toBe(0);
    expect(sh(`"$1" "$2" -y -f ${k}`).status).toBe(0);
    expect(sh(`"$1" "$3" dropbear openssh ${k} "$(printf 'o\\351')"`).status).toBe(0);
    expect(sh(`"$1" "$3" openssh dropbear "$(printf 'o\\351')" "$(printf 'd\\351')"`).status).toBe(0);
    const names = readdirSync(dir, { encoding: "buffer" }).map((n) => n.toString("latin1"));
    for (const n of ["k\xe9", "k\xe9.pub", "o\xe9", "d\xe9"]) expect(names).toContain(n);
    expect(names.filter((n) => n.includes("\xef\xbf\xbd"))).toEqual([]);
    const file = (n: string): Buffer => Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(n, "latin1")]);
    expect(readFileSync(file("d\xe9"))).toEqual(readFileSync(file("k\xe9")));
  });
});

describe("dropbearconvert", () => {
  itWithPeers(["ssh-keygen"], "dropbear -> openssh: ssh-keygen reads the result, same public key", () => {
    for (const { gen, name } of TYPES) {
      const base = `d2o-${name}`;
      expect(dropbearkey(...gen, "-f", base).status).toBe(0);
      const r = convert("dropbear", "openssh", base, `${base}.ossh`);
      expect({ name, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
        name,
        status: 0,
        stdout: "",
        stderr: `Key is a ${name} key\nWrote key to '${base}.ossh'\n`,
      });
      expect(statSync(join(dir, `${base}.ossh`)).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, `${base}.ossh`), "utf8")).toMatch(
        /^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]*\n-----END OPENSSH PRIVATE KEY-----\n$/,
      );
      expect(opensshPub(`${base}.ossh`)).toBe(dropbearPub(base));
    }
  });

  itWithPeers(["ssh-keygen"], "openssh -> dropbear: ssh-keygen's keys (new and PEM formats) read back", () => {
    for (const { keygen, name } of TYPES) {
      for (const format of ["RFC4716", "PEM"]) {
        // RFC4716 is what ssh-keygen calls its openssh-key-v1 private key format.
        if (format === "PEM" && name === "ssh-ed25519") {
          continue;
        }
        const base = `o2d-${name}-${format}`;
        expect(exec(PEERS["ssh-keygen"], "-q", ...keygen, "-m", format, "-N", "", "-f", base).status).toBe(0);
        const r = convert("o", "d", base, `${base}.db`);
        expect({ name, format, status: r.status, stderr: r.stderr }).toEqual({
          name,
          format,
          status: 0,
          stderr: `Key is a ${name} key\nWrote key to '${base}.db'\n`,
        });
        expect(statSync(join(dir, `${base}.db`)).mode & 0o777).toBe(0o600);
        expect(dropbearPub(`${base}.db`)).toBe(readFileSync(join(dir, `${base}.pub`), "utf8").split(" ").slice(0, 2).join(" "));
      }
    }
  });

  itWithPeers(["dropbearconvert", "dropbearkey"], "Debian's dropbearconvert round-trips our output, both ways", () => {
    for (const { gen, name } of TYPES) {
      const base = `rt-${name}`;
      expect(dropbearkey(...gen, "-f", base).status).toBe(0);
      // Ours to OpenSSH format, Debian's back to Dropbear's: the very same key file.
      expect(convert("d", "o", base, `${base}.ossh`).status).toBe(0);
      expect(exec(PEERS.dropbearconvert, "o", "d", `${base}.ossh`, `${base}.back`).status).toBe(0);
      expect(readFileSync(join(dir, `${base}.back`))).toEqual(readFileSync(join(dir, base)));
      // Debian's to OpenSSH format, ours back.
      expect(exec(PEERS.dropbearconvert, "d", "o", base, `${base}.theirs`).status).toBe(0);
      expect(convert("o", "d", `${base}.theirs`, `${base}.back2`).status).toBe(0);
      expect(readFileSync(join(dir, `${base}.back2`))).toEqual(readFileSync(join(dir, base)));
      // Debian's dropbearkey reads what our dropbearconvert wrote.
      const y = exec(PEERS.dropbearkey, "-y", "-f", `${base}.back2`);
      expect(y.status).toBe(0);
      expect(y.stdout.split("\n")[1].split(" ").slice(0, 2).join(" ")).toBe(dropbearPub(base));
    }
  });

  it("never overwrites the output file (2026.94 opens it O_EXCL)", () => {
    expect(dropbearkey("-f", "excl").status).toBe(0);
    writeFileSync(join(dir, "excl.out"), "keep\n");
    const toOssh = convert("d", "o", "excl", "excl.out");
    expect([toOssh.status, toOssh.stderr]).toEqual([
      1,
      "Key is a ssh-ed25519 key\nFailed opening output file: File exists\nError writing key to 'excl.out'\n",
    ]);
    const toDb = convert("d", "d", "excl", "excl.out");
    expect([toDb.status, toDb.stderr]).toEqual([
      1,
      "Key is a ssh-ed25519 key\nCouldn't create new file excl.out: File exists\nError writing key to 'excl.out'\n",
    ]);
    expect(readFileSync(join(dir, "excl.out"), "utf8")).toBe("keep\n");
  });

  it("a three-prime RSA key (PKCS#8) is refused, not written as a two-prime key that cannot sign", () => {
    // openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_primes:3 -pkeyopt rsa_keygen_bits:1024
    const pem = [
      "MIIClwIBADANBgkqhkiG9w0BAQEFAASCAoEwggJ9AgEBAoGBAKd1IKAEnpU4cmP6",
      "e84d2Ksae4OvX/5bFwKnk+F6MBFNlUYoDNYDRfP7ELISVqZeOGpxEXQf7s5+Qk02",
      "VmPTEV6p20DBk2NeBp4YvgG0Xy0dqkVgf6jaS3ozng5UNk2HgpIoEHxmH3sYxQpl",
      "K+VDVtjPVlI9H6zH91NUPeXx0UqhAgMBAAECgYBclMQR1Bv88fVEUzLplNS6XGzX",
      "NDmFPcUuAYofydcTaepSnEfkdnDRYAglrAqOCRWf4uufPnzNunxqONRzJzMXzq6q",
      "CaWzRf8Hd7c+yVCYdrHRhYrDPRV4V59NZqI838Ioy+P0KIGzGYwOhSsA3hoWL7jt",
      "K3ldXG3p6Xy2lhS3QQIrNkwMyAjaGVBn0OfMfoJhbMpDRYvJniMu95C4E43vuTsf",
      "OG2AfIfFrcr4kQIrHgW5wUbuZmfLRixs970xbT8o91zDBkw1baLJ29EyqmofxuT8",
      "bWXvRC1CKwIrLrZSsK1c5TZVelZRie0lX/DK20Qd2pyuRXINy1TrDlKc03DxfzFX",
      "keLy4QIrG9u6Q4PbQkE8GbCtqLDxRWtfSzHTcmuTBFoTL5uOhR2WwQvIxIbbIAtT",
      "IwIrJEXcRNCA35lmCFwcU2Yu10w5QEIw+D0rtS4Qy1b9dWRMB3YO7NCBZJsJajCB",
      "ijCBhwIrGkxMLkf9XENy6zsyMVXfDs9SiSGePHjvOBd/kAP9AcP4W9UhytrJoirf",
      "swIrF8n1D9inZBLPneLKoL5hLPB2ZP44OdPb8g2vowM4l6RCwi+mhe4sf7nw6QIr",
      "FxM7JYI4K/o1LlTX2WlMXyfObbiKteIx3huknrGsJATAm7gnzaXONFizdQ==",
    ];
    writeFileSync(join(dir, "rsa3p"), `-----BEGIN PRIVATE KEY-----\n${pem.join("\n")}\n-----END PRIVATE KEY-----\n`);
    for (const out of ["dropbear", "openssh"]) {
      const r = convert("openssh", out, "rsa3p", `rsa3p.${out}`);
      expect([r.status, r.stderr]).toEqual([1, "Error: RSA keys with more than two primes are not supported\nError reading key from 'rsa3p'\n"]);
      expect(readdirSync(dir)).not.toContain(`rsa3p.${out}`);
    }
  });

  itWithPeers(["dropbearconvert"], "unreadable input: the same messages and status as Debian's", () => {
    writeFileSync(join(dir, "garbage"), "hello\n");
    for (const args of [
      ["o", "d", "missing", "x1"],
      ["d", "o", "missing", "x2"],
      ["d", "o", "garbage", "x4"],
    ]) {
      const a = convert(...args);
      const b = exec(PEERS.dropbearconvert, ...args);
      expect({ args, status: a.status, stdout: a.stdout, stderr: a.stderr }).toEqual({
        args,
        status: b.status,
        stdout: b.stdout,
        stderr: b.stderr,
      });
    }
    // Debian's 2022.83 words this one differently; 2026.94 says what we say.
    const g = convert("o", "d", "garbage", "x3");
    expect([g.status, g.stderr]).toEqual([1, "Error: Unrecognised key type\nError reading key from 'garbage'\n"]);
  });
});

describe("dropbearconvert with encrypted OpenSSH keys (beyond Dropbear)", () => {
  const PASS = "correct horse";

  itWithPeers(["ssh-keygen"], "without a terminal the key is refused, as Dropbear refuses it", () => {
    expect(exec(PEERS["ssh-keygen"], "-q", "-t", "ed25519", "-N", PASS, "-f", "enc-notty").status).toBe(0);
    // setsid: no controlling terminal, so /dev/tty cannot be opened.
    const r = exec("setsid", "-w", process.execPath, convertBin, "o", "d", "enc-notty", "enc-notty.db");
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "Error: Encrypted keys are not supported. Please convert with ssh-keygen first\n" +
        "Error reading key from 'enc-notty'\n",
    );
  });

  /** Run a conversion under script(1), so it has a terminal; type `answer` at the prompt. */
  function convertOnTty(answer: string, ...args: string[]): Promise<{ status: number | null; output: string }> {
    const cmd = [process.execPath, convertBin, ...args].map((a) => `'${a}'`).join(" ");
    const child = spawn("script", ["-qec", cmd, "/dev/null"], { cwd: dir });
    let output = "";
    let answered = false;
    child.stdout.on("data", (d: Buffer) => {
      output += d.toString("utf8");
      if (!answered && output.includes("Enter passphrase for key")) {
        answered = true;
        child.stdin.write(`${answer}\n`);
      }
    });
    return new Promise((resolve) => child.on("close", (status) => resolve({ status, output })));
  }

  for (const [label, keygen] of [
    ["openssh-key-v1 ed25519", ["-t", "ed25519"]],
    ["openssh-key-v1 ecdsa", ["-t", "ecdsa"]],
    ["PEM rsa", ["-t", "rsa", "-b", "2048", "-m", "PEM"]],
  ] as const) {
    itWithPeers(["ssh-keygen"], `${label}: the passphrase is asked on the terminal, unechoed`, async () => {
      const base = `enc-${label.replaceAll(" ", "-")}`;
      expect(exec(PEERS["ssh-keygen"], "-q", ...keygen, "-N", PASS, "-f", base).status).toBe(0);
      const r = await convertOnTty(PASS, "o", "d", base, `${base}.db`);
      expect(r.status).toBe(0);
      expect(r.output).toContain(`Enter passphrase for key '${base}': `);
      expect(r.output).not.toContain(PASS);
      expect(r.output).toContain(`Wrote key to '${base}.db'`);
      expect(dropbearPub(`${base}.db`)).toBe(readFileSync(join(dir, `${base}.pub`), "utf8").split(" ").slice(0, 2).join(" "));
    });
  }

  itWithPeers(["ssh-keygen"], "an empty answer is a wrong passphrase, not a format Dropbear refuses", async () => {
    expect(exec(PEERS["ssh-keygen"], "-q", "-t", "ed25519", "-N", PASS, "-f", "enc-empty").status).toBe(0);
    expect(exec(PEERS["ssh-keygen"], "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", PASS, "-f", "enc-empty-pem").status).toBe(0);
    for (const file of ["enc-empty", "enc-empty-pem"]) {
      const r = await convertOnTty("", "o", "d", file, `${file}.db`);
      expect(r.status).toBe(1);
      expect(r.output).toContain("Error: incorrect passphrase supplied to decrypt private key");
      expect(r.output).not.toMatch(/not supported/);
      expect(readdirSync(dir)).not.toContain(`${file}.db`);
    }
  });

  itWithPeers(["ssh-keygen"], "a wrong passphrase fails with status 1 and writes nothing", async () => {
    expect(exec(PEERS["ssh-keygen"], "-q", "-t", "ed25519", "-N", PASS, "-f", "enc-wrong").status).toBe(0);
    const r = await convertOnTty("wrong horse", "o", "d", "enc-wrong", "enc-wrong.db");
    expect(r.status).toBe(1);
    expect(r.output).toContain("Error: incorrect passphrase supplied to decrypt private key");
    expect(r.output).toContain("Error reading key from 'enc-wrong'");
    expect(() => statSync(join(dir, "enc-wrong.db"))).toThrow();
  });
});
