import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { PEERS, itAsRoot } from "./helpers/peers.js";
import { freePort, run, scratch, startOurDropbearWithHostKeys, waitPort, type RunResult, type Server } from "./helpers/servers.js";
import { echoRoundTrip, payload, startEchoTarget, startTunnel, type Target } from "./helpers/tunnel.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// PuTTY's command-line tools (Debian's putty-tools) against our dropbear: plink for commands,
// ptys and every kind of forwarding, pscp over SFTP and over scp, psftp. PuTTY's algorithm
// preferences come from a saved session (~/.putty/sessions/<name>, "Key=value" lines), which
// plink loads with -load; everything after WARN in a list is refused rather than asked about.

const USER = "dbtsputty";
const PASSWORD = "putty-pw-1";
const work = scratch("dbts-putty-");
const keys = { ed25519: "", rsa: "" };
const hostFp: Record<"ed25519" | "rsa" | "ecdsa", string> = { ed25519: "", rsa: "", ecdsa: "" };
const user = { home: "", uid: 0, gid: 0 };
let ours: Server;
let echo: Target;

const sha = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

/** The SHA256 fingerprint of a public key file, as ssh-keygen -l prints it (plink -hostkey takes it). */
function fingerprint(pub: string): string {
  const r = spawnSync(PEERS["ssh-keygen"], ["-l", "-f", pub], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen -l ${pub}: ${r.stderr}`);
  return r.stdout.split(" ")[1]!;
}

/** A PuTTY key (.ppk, no passphrase) and its OpenSSH public half at `path`.pub. */
function puttygen(path: string, type: string): string {
  const args = ["-q", "-t", type, ...(type === "rsa" ? ["-b", "2048"] : []), "-o", path, "--new-passphrase", "/dev/null"];
  const g = spawnSync(PEERS.puttygen, args, { encoding: "utf8" });
  if (g.status !== 0) throw new Error(`puttygen ${args.join(" ")}: ${g.stderr}`);
  const p = spawnSync(PEERS.puttygen, [path, "-O", "public-openssh", "-o", `${path}.pub`], { encoding: "utf8" });
  if (p.status !== 0) throw new Error(`puttygen -O public-openssh: ${p.stderr}`);
  return path;
}

/** A saved PuTTY session `name` under work.dir's fake HOME with these settings. */
function savedSession(name: string, settings: Record<string, string>): void {
  const dir = join(work.dir, "home", ".putty", "sessions");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), Object.entries(settings).map(([k, v]) => `${k}=${v}\n`).join(""));
}

interface PlinkOpts {
  /** A saved session to load (savedSession), for algorithm preferences. */
  load?: string;
  /** The user key; none for password auth. */
  key?: string | null;
  hostkey?: keyof typeof hostFp;
  input?: string | Buffer;
}

/** The options every PuTTY tool takes to reach our server as USER, non-interactively. */
function puttyArgs(o: PlinkOpts, portFlag = "-P"): string[] {
  return [
    ...(o.load !== undefined ? ["-load", o.load] : []),
    "-batch",
    portFlag,
    String(ours.port),
    "-hostkey",
    hostFp[o.hostkey ?? "ed25519"],
    ...(o.key === null ? [] : ["-i", o.key ?? keys.ed25519]),
  ];
}

const env = (): NodeJS.ProcessEnv => ({ HOME: join(work.dir, "home") });

/** plink USER@127.0.0.1 `command` to completion (bounded). */
async function plink(command: string, o: PlinkOpts & { extra?: string[] } = {}): Promise<RunResult> {
  if (Buffer.isBuffer(o.input)) {
    return runBinaryInput(PEERS.plink, ["-ssh", ...puttyArgs(o), ...(o.extra ?? []), `${USER}@127.0.0.1`, command], o.input);
  }
  return run(PEERS.plink, ["-ssh", ...puttyArgs(o), ...(o.extra ?? []), `${USER}@127.0.0.1`, command], { env: env(), input: o.input, timeoutMs: 60_000 });
}

/** run() with a binary stdin (run() takes text). */
async function runBinaryInput(cmd: string, args: string[], input: Buffer): Promise<RunResult> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env() }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.on("error", () => undefined);
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const [status] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { status, stdout, stderr };
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) return;
  ({ home: user.home, uid: user.uid, gid: user.gid } = addTestUser(USER, { password: PASSWORD }));
  keys.ed25519 = puttygen(join(work.dir, "id_ed25519.ppk"), "ed25519");
  keys.rsa = puttygen(join(work.dir, "id_rsa.ppk"), "rsa");
  authorizeKeys(user, `${keys.ed25519}.pub`, `${keys.rsa}.pub`);
  const types = ["ed25519", "rsa", "ecdsa"] as const;
  const started = await startOurDropbearWithHostKeys(work.dir, types);
  ours = started.server;
  types.forEach((t, i) => (hostFp[t] = fingerprint(`${started.hostKeys[i]!}.pub`)));
  echo = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  await echo?.close();
  if (process.getuid?.() === 0) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("plink against our dropbear", () => {
  itAsRoot(["plink", "puttygen", "ssh-keygen"], "runs a command: stdout, stderr and its exit code come back", async () => {
    const r = await plink("echo out; echo err >&2; id -un; exit 3");
    expect(r.stdout).toBe(`out\n${USER}\n`);
    expect(r.stderr).toContain("err\n");
    expect(r.status).toBe(3);
  });

  itAsRoot(["plink", "puttygen", "ssh-keygen"], "each cipher and key exchange PuTTY offers carries 1 MB of stdin intact", async () => {
    const data = payload(1 << 20);
    // PuTTY puts a newer algorithm it knows ahead of a saved list that does not name it, so each
    // list names all of them, the one under test first and the rest after WARN (refused).
    const ciphers = ["chacha20", "aesgcm", "aes"];
    const kexes = ["ntru-curve25519", "ecdh", "dh-group16-sha512"];
    const seen: string[] = [];
    for (const [i, cipher] of ciphers.entries()) {
      const kex = kexes[i]!;
      const name = `c-${cipher}`;
      savedSession(name, {
        Cipher: [cipher, "WARN", ...ciphers.filter((c) => c !== cipher)].join(","),
        KEX: [kex, "WARN", ...kexes.filter((k) => k !== kex)].join(","),
      });
      const r = await plink("sha256sum", { load: name, input: data, extra: ["-v"] });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split(" ")[0]).toBe(sha(data));
      seen.push(/Initialised (.*?) outbound encryption/.exec(r.stderr)?.[1] ?? "?");
      seen.push(/Doing (.*?) key exchange/.exec(r.stderr)?.[1] ?? "?");
    }
    expect(seen.join(" | ")).toMatch(/ChaCha20.*NTRU Prime.*AES-128 GCM.*ECDH.*AES-256 SDCTR.*Diffie-Hellman/);
  });

  itAsRoot(["plink", "puttygen", "ssh-keygen"], "RSA and ECDSA host keys are offered and verified; an RSA user key signs with SHA-2", async () => {
    for (const hostkey of ["rsa", "ecdsa"] as const) {
      const name = `hk-${hostkey}`;
      savedSession(name, { HostKey: [hostkey, "WARN", "ed25519", hostkey === "rsa" ? "ecdsa" : "rsa"].join(",") });
      const r = await plink("echo hk", { load: name, hostkey, key: keys.rsa, extra: ["-v"] });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe("hk\n");
      expect(r.stderr).toMatch(/rsa-sha2-(256|512)/);
    }
    // Dropbear logs the key's type, not the signature's.
    expect(ours.log()).toMatch(/Pubkey auth succeeded for 'dbtsputty' with ssh-rsa key/);
  });

  itAsRoot(["plink", "puttygen", "ssh-keygen"], "password auth: the right password runs the command, a wrong one is refused", async () => {
    const ok = await plink("echo pw", { key: null, extra: ["-pw", PASSWORD] });
    expect(ok.stdout).toBe("pw\n");
    expect(ok.status).toBe(0);
    const bad = await plink("echo never", { key: null, extra: ["-pw", "wrong"] });
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toBe("");
  });

  itAsRoot(["plink", "puttygen", "ssh-keygen"], "-m runs a 20 KB command file (C Dropbear ends the connection past 9000 bytes)", async () => {
    const script = join(work.dir, "script.sh");
    writeFileSync(script, `echo start\n${"true # a line of a long script, as plink -m sends it whole\n".repeat(350)}echo end; exit 4\n`);
    const r = await plink("", { extra: ["-m", script] });
    expect(r.stderr).not.toMatch(/FATAL/);
    expect(r.stdout).toBe("start\nend\n");
    expect(r.status).toBe(4);
  });

  itAsRoot(["plink", "puttygen", "ssh-keygen"], "many rekeys (RekeyBytes=100K) keep data intact; each winadj@putty request gets CHANNEL_FAILURE", async () => {
    // With a forwarding set up plink is not "simple", so it measures the round trip with
    // winadj@putty.projects.tartarus.org requests, which a server must answer with FAILURE.
    // Curve25519 rekeys cost less than the NTRU Prime hybrid PuTTY would pick.
    savedSession("rekey", { RekeyBytes: "100K", KEX: "ecdh,WARN,ntru-curve25519,dh-group16-sha512" });
    const up = payload(1 << 19);
    const raw = join(work.dir, "rekey.raw");
    const lport = await freePort();
    const r = await plink("sha256sum; head -c 2000000 /dev/zero", { load: "rekey", input: up, extra: ["-L", `${lport}:127.0.0.1:${echo.port}`, "-sshrawlog", raw] });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.slice(0, 64)).toBe(sha(up));
    expect(r.stdout.length).toBe(68 + 2_000_000);
    const log = readFileSync(raw, "latin1");
    expect(log.match(/Event Log: .*key re-exchange/g)?.length ?? 0).toBeGreaterThan(5);
    const count = (re: RegExp): number => log.match(re)?.length ?? 0;
    const winadj = count(/^Outgoing packet .*SSH2_MSG_CHANNEL_REQUEST/gm) - 1; // less the exec
    expect(winadj).toBeGreaterThan(0);
    // The last may still be unanswered when the channel closes.
    expect(count(/^Incoming packet .*SSH2_MSG_CHANNEL_FAILURE/gm)).toBeGreaterThanOrEqual(winadj - 1);
  });

  itAsRoot(["plink", "puttygen", "ssh-keygen"], "-t gets a pty with PuTTY's TERM and size", async () => {
    const r = await plink("tty; echo $TERM; stty size", { extra: ["-t"] });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split(/\r?\n/);
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/);
    expect(lines[1]).toBe("xterm");
    expect(lines[2]).toBe("24 80");
  });
});

/**
 * Through the SOCKS5 proxy at `proxyPort`, CONNECT to 127.0.0.1:`port`, send `data`, half-close
 * and hash what comes back until the far end closes.
 */
async function socks5RoundTrip(proxyPort: number, port: number, data: Buffer): Promise<string> {
  const s = net.connect({ port: proxyPort, host: "127.0.0.1", allowHalfOpen: true });
  const h = createHash("sha256");
  // Replies the proxy owes before the tunnel is up: method choice (2 bytes), CONNECT reply (10).
  let handshake = Buffer.alloc(0);
  let stage: "method" | "connect" | "open" = "method";
  const done = new Promise<void>((resolve, reject) => {
    s.on("error", reject);
    s.on("end", () => resolve());
    s.on("data", (d: Buffer) => {
      if (stage === "open") {
        h.update(d);
        return;
      }
      handshake = Buffer.concat([handshake, d]);
      if (stage === "method" && handshake.length >= 2) {
        if (handshake[0] !== 5 || handshake[1] !== 0) reject(new Error(`SOCKS method reply ${handshake.toString("hex")}`));
        handshake = handshake.subarray(2);
        stage = "connect";
        const req = Buffer.from([5, 1, 0, 1, 127, 0, 0, 1, 0, 0]);
        req.writeUInt16BE(port, 8);
        s.write(req);
      }
      if (stage === "connect" && handshake.length >= 10) {
        if (handshake[1] !== 0) reject(new Error(`SOCKS connect reply ${handshake.toString("hex")}`));
        h.update(handshake.subarray(10));
        stage = "open";
        s.end(data);
      }
    });
  });
  await once(s, "connect");
  s.write(Buffer.from([5, 1, 0]));
  await done;
  s.destroy();
  return h.digest("hex");
}

describe("plink's forwarding through our dropbear", () => {
  itAsRoot(["plink", "puttygen", "ssh-keygen"], "-L, -R and -D each carry 1 MB both ways intact", async () => {
    const [lport, rport, dport] = [await freePort(), await freePort(), await freePort()];
    const t = await startTunnel(
      PEERS.plink,
      ["-ssh", ...puttyArgs({}), "-N", "-L", `${lport}:127.0.0.1:${echo.port}`, "-R", `${rport}:127.0.0.1:${echo.port}`, "-D", String(dport), `${USER}@127.0.0.1`],
      lport,
      env(),
    );
    try {
      const viaL = await echoRoundTrip(lport, 1 << 20);
      expect(viaL.gotHash).toBe(viaL.sentHash);
      await waitPort(rport, null, t.log, 15_000);
      const viaR = await echoRoundTrip(rport, 1 << 20);
      expect(viaR.gotHash).toBe(viaR.sentHash);
      // -D: SOCKS5 CONNECT, then the same echo.
      await waitPort(dport, null, t.log, 15_000);
      const data = payload(1 << 20);
      expect(await socks5RoundTrip(dport, echo.port, data)).toBe(sha(data));
    } finally {
      await t.stop();
    }
    // The session's end (the server sees plink's connection close) takes the -R listener with it.
    const refused = async (): Promise<boolean> => {
      const c = net.connect({ port: rport, host: "127.0.0.1" });
      const r = await Promise.race([once(c, "error").then(() => true), once(c, "connect").then(() => false)]);
      c.destroy();
      return r;
    };
    await expect.poll(refused, { timeout: 15_000, interval: 100 }).toBe(true);
  });
});

describe("pscp and psftp against our dropbear", () => {
  itAsRoot(["pscp", "puttygen", "ssh-keygen", "sftp-server"], "pscp over SFTP and over scp: 3 MB up and back down intact", async () => {
    const local = join(work.dir, "up.bin");
    const data = payload(3_000_000);
    writeFileSync(local, data);
    for (const proto of ["-sftp", "-scp"]) {
      const remote = join(user.home, `copy${proto}.bin`);
      const up = await run(PEERS.pscp, [...puttyArgs({}), "-q", proto, local, `${USER}@127.0.0.1:${remote}`], { env: env(), timeoutMs: 60_000 });
      expect(up.status, up.stderr).toBe(0);
      expect(sha(readFileSync(remote))).toBe(sha(data));
      const back = join(work.dir, `back${proto}.bin`);
      const down = await run(PEERS.pscp, [...puttyArgs({}), "-q", proto, `${USER}@127.0.0.1:${remote}`, back], { env: env(), timeoutMs: 60_000 });
      expect(down.status, down.stderr).toBe(0);
      expect(sha(readFileSync(back))).toBe(sha(data));
    }
  });

  itAsRoot(["psftp", "puttygen", "ssh-keygen", "sftp-server"], "psftp runs a batch: mkdir, put, rename, get, rm; the files are the user's", async () => {
    const local = join(work.dir, "ps.bin");
    const data = payload(500_000);
    writeFileSync(local, data);
    const back = join(work.dir, "ps.back");
    const batch = join(work.dir, "batch");
    writeFileSync(batch, ["mkdir d", "cd d", `put ${local} a.bin`, "mv a.bin b.bin", `get b.bin ${back}`, "ls", "quit", ""].join("\n"));
    chownSync(batch, 0, 0);
    const r = await run(PEERS.psftp, [...puttyArgs({}), "-b", batch, `${USER}@127.0.0.1`], { env: env(), timeoutMs: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/b\.bin/);
    expect(sha(readFileSync(back))).toBe(sha(data));
    const st = spawnSync("stat", ["-c", "%U", join(user.home, "d", "b.bin")], { encoding: "utf8" });
    expect(st.stdout.trim()).toBe(USER);
  });
});
