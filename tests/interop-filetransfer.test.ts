import { execFileSync, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { IS_ROOT, PEERS, itAsRoot } from "./helpers/peers.js";
import { exited, opensshKeygen, OURS, run, scratch, type Server, startOurDropbearWithHostKey, startSshd } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// File transfer programs over our dropbear and over our dbclient: OpenSSH's sftp resuming
// (reput/reget) through `sftp -S dbclient`, scp's own error lines (`\x01`) through our server,
// rsync's --append/--delete through `rsync -e dbclient`, and a command whose reader goes away
// early (`dbclient host yes | head`), which must end rather than hang. Needs root (useradd).

const USER = "dbtsfilexfer";
const work = scratch("dbts-filexfer-");
/** Clients run with the scratch directory as HOME (dbclient's known_hosts goes there). */
const inWork = { env: { HOME: work.dir } };
let home = "";
let uid = 0;
let gid = 0;
let key = "";
let dbc = "";
/** 8 MB of random bytes. */
const BIG = randomBytes(8_000_000);
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex");
const BIG_SHA = sha(BIG);
let bigLocal = "";
let server: Server | null = null;

beforeAll(async () => {
  if (!IS_ROOT) return;
  ({ home, uid, gid } = addTestUser(USER));
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key, { comment: "filexfer" });
  authorizeKeys({ home, uid, gid }, `${key}.pub`);
  bigLocal = join(work.dir, "big.bin");
  writeFileSync(bigLocal, BIG);
  // sftp -S, scp -S and rsync -e run a program with their own arguments: a wrapper adds ours.
  dbc = join(work.dir, "dbc");
  writeFileSync(dbc, `#!/bin/sh\nexec "${process.execPath}" "${OURS.dbclient}" -y -y -i "${key}" "$@"\n`, { mode: 0o755 });
  server = await startOurDropbearWithHostKey(work.dir);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
});

/** A file in the user's home, owned by the user. */
function homeFile(name: string, data: Buffer | string): string {
  const p = join(home, name);
  writeFileSync(p, data);
  chownSync(p, uid, gid);
  return p;
}

function userProcs(comm: string): string {
  try {
    return execFileSync("pgrep", ["-u", USER, "-x", comm], { encoding: "utf8" });
  } catch {
    return "";
  }
}

describe("file transfers through our dropbear and our dbclient", () => {
  itAsRoot(["ssh-keygen"], "dbclient host 'yes; exit 7' | head: the reader gone, dbclient's CLOSE stops the command, its status comes back", async () => {
    // dbclient's stdout fails (EPIPE) and its stdin is at EOF: it sends CLOSE. C Dropbear's
    // server keeps reading the command's pipes until the command exits, and `yes` never does
    // once the window is spent, so both ends waited for ever; sshd closes the pipes.
    const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(server!.port), `${USER}@127.0.0.1`, "yes; exit 7"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, HOME: work.dir },
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.stdout.destroy();
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const t0 = Date.now();
    const status = await exited(child);
    clearTimeout(timer);
    // The shell goes on once `yes` dies of SIGPIPE: its status comes back before the CLOSE.
    expect(status, stderr).toBe(7);
    expect(Date.now() - t0).toBeLessThan(8_000);
    await expect.poll(() => userProcs("yes"), { timeout: 5_000, interval: 100 }).toBe("");
  });

  itAsRoot(["ssh-keygen", "sftp"], "sftp -S dbclient: reput and reget finish partial files, ln -s, chmod, a directory of 3000 entries", async () => {
    homeFile("part.bin", BIG.subarray(0, 3_000_000));
    const gotLocal = join(work.dir, "reget.bin");
    writeFileSync(gotLocal, BIG.subarray(0, 2_000_000));
    homeFile("whole.bin", BIG);
    const many = join(home, "many");
    mkdirSync(many);
    for (let i = 0; i < 3000; i++) writeFileSync(join(many, `f${i}`), "");
    const batch = join(work.dir, "batch");
    writeFileSync(batch, `reput ${bigLocal} part.bin\nreget whole.bin ${gotLocal}\nln -s whole.bin lnk\nchmod 600 whole.bin\nls -1 many\n`);
    const r = await run(PEERS.sftp, ["-S", dbc, "-R", "16", "-B", "65536", "-P", String(server!.port), "-b", batch, `${USER}@127.0.0.1`], inWork);
    expect(r.status, r.stderr).toBe(0);
    expect(sha(readFileSync(join(home, "part.bin")))).toBe(BIG_SHA);
    expect(sha(readFileSync(gotLocal))).toBe(BIG_SHA);
    expect(readlinkSync(join(home, "lnk"))).toBe("whole.bin");
    expect(statSync(join(home, "whole.bin")).mode & 0o777).toBe(0o600);
    expect(r.stdout.toString().split("\n").filter((l) => /^many\/f\d+$/.test(l)).length).toBe(3000);
  });

  itAsRoot(["ssh-keygen", "scp"], "scp -O -r through our dropbear: an unreadable file is scp's \\x01 warning, the rest is copied, status 1", async () => {
    const d = join(home, "tree");
    mkdirSync(d);
    for (const n of ["a", "b", "c"]) writeFileSync(join(d, n), `${n}\n`);
    chmodSync(join(d, "b"), 0);
    execFileSync("chown", ["-R", `${uid}:${gid}`, d]);
    const dest = join(work.dir, "tree-back");
    const r = await run(PEERS.scp, ["-O", "-r", "-S", dbc, "-P", String(server!.port), `${USER}@127.0.0.1:tree`, dest], inWork);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("scp: tree/b: Permission denied");
    expect(readdirSync(dest).sort()).toEqual(["a", "c"]);
    // A missing source: the remote scp's error line and status 1, not the transport's 255.
    const missing = await run(PEERS.scp, ["-O", "-S", dbc, "-P", String(server!.port), `${USER}@127.0.0.1:no-such`, join(work.dir, "x")], inWork);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("scp: no-such: No such file or directory");
  });

  itAsRoot(["ssh-keygen", "sshd", "scp", "sftp"], "scp -S dbclient and sftp -S dbclient to an sshd without an sftp Subsystem: refused at once, not a hang", async () => {
    // C's dbclient asks no reply to its subsystem (or exec) request, and sshd, refusing it
    // without one, leaves the channel open: scp and sftp waited for ever. Ours asks, as ssh does.
    const d = join(work.dir, "sshd-nosftp");
    mkdirSync(d);
    const sshd = await startSshd(d);
    try {
      const scp = await run(PEERS.scp, ["-S", dbc, "-P", String(sshd.port), `${USER}@127.0.0.1:/etc/hostname`, join(work.dir, "h")], { ...inWork, timeoutMs: 10_000 });
      expect(scp.status, scp.stderr).toBe(255);
      expect(scp.stderr).toContain("subsystem request failed on channel 0");
      const sftp = await run(PEERS.sftp, ["-S", dbc, "-P", String(sshd.port), `${USER}@127.0.0.1`], { ...inWork, input: "ls\n", timeoutMs: 10_000 });
      expect(sftp.status, sftp.stderr).toBe(255);
    } finally {
      await sshd.stop();
    }
    // Our dropbear answers too: status 1 and the reason, where C's dbclient ended with 0 and no word.
    const r = await run(process.execPath, [OURS.dbclient, "-y", "-y", "-i", key, "-p", String(server!.port), "-s", `${USER}@127.0.0.1`, "nosuchsubsystem"], inWork);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("subsystem request failed on channel 0");
  });

  itAsRoot(["ssh-keygen", "rsync"], "rsync -e dbclient: --append finishes a cut file, --delete removes what went away", async () => {
    const src = join(work.dir, "rs");
    mkdirSync(src);
    writeFileSync(join(src, "big.bin"), BIG);
    for (let i = 0; i < 200; i++) writeFileSync(join(src, `s${i}`), `${i}\n`);
    const e = ["-e", `${dbc} -p ${server!.port}`];
    const remote = `${USER}@127.0.0.1:rs/`;
    const up = await run(PEERS.rsync, ["-a", ...e, `${src}/`, remote], inWork);
    expect(up.status, up.stderr).toBe(0);
    truncateSync(join(home, "rs", "big.bin"), 3_000_000);
    rmSync(join(src, "s0"));
    const again = await run(PEERS.rsync, ["-a", "--append", "--delete", ...e, `${src}/`, remote], inWork);
    expect(again.status, again.stderr).toBe(0);
    expect(sha(readFileSync(join(home, "rs", "big.bin")))).toBe(BIG_SHA);
    expect(readdirSync(join(home, "rs")).length).toBe(200);
    // The remote rsync failing to start: rsync's protocol error status, not a hang.
    const bad = await run(PEERS.rsync, ["-a", ...e, "--rsync-path=/bin/false", `${src}/s1`, `${USER}@127.0.0.1:x`], inWork);
    expect(bad.status).toBe(12);
  });
});
