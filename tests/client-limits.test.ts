import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { itAsRoot } from "./helpers/peers.js";
import { OURS, ourKeygen, run, scratch, startOurDropbearWithHostKey, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser, type TestUser } from "./helpers/users.js";

// dbclient under resource limits. First, run by a user near RLIMIT_NPROC. The kernel counts each thread of a process against
// its user's limit; Node starts libuv's four worker threads at the first host-name lookup and
// aborts the process if it cannot. C's dbclient, one thread, connects at any limit.

const CLIENT = "dbtsnprocc";
const LOGIN = "dbtsnprocl";
const work = scratch("dbts-climits-");
let server: Server;
let client: TestUser;
let login: TestUser;
let key: string;

beforeAll(async () => {
  if (process.getuid?.() !== 0) return;
  client = addTestUser(CLIENT);
  login = addTestUser(LOGIN);
  // The key is the client user's file; the server's processes run as another user, so their
  // threads do not count against the client's limit.
  key = join(client.home, "id_login");
  ourKeygen(join(work.dir, "id_login"));
  copyFileSync(join(work.dir, "id_login"), key);
  chownSync(key, client.uid, client.gid);
  chmodSync(key, 0o600);
  authorizeKeys(login, join(work.dir, "id_login.pub"));
  server = await startOurDropbearWithHostKey(work.dir);
}, 60_000);

afterAll(async () => {
  await server?.stop();
  if (process.getuid?.() === 0) {
    // A copy left waiting in Node's start (the failure these tests look for) is killed with its user.
    spawnSync("pkill", ["-KILL", "-U", String(client.uid)]);
    removeTestUser(CLIENT);
    removeTestUser(LOGIN);
  }
  work.cleanup();
});

/** Our dbclient (its bin script, as users start it) as the client user, under `prlimit --nproc=limit`. */
function limitedClient(limit: number, args: string[], timeoutMs = 30_000, resource = "nproc"): ReturnType<typeof run> {
  return run(
    "setpriv",
    [`--reuid=${client.uid}`, `--regid=${client.gid}`, "--clear-groups", "prlimit", `--${resource}=${limit}:${limit}`, OURS.dbclient, ...args],
    { env: { HOME: client.home }, timeoutMs },
  );
}

describe("dbclient under RLIMIT_NPROC", () => {
  // Six tasks leave room for Node's own start (four with the bin's --v8-pool-size=1) but not
  // for libuv's pool on top of them.
  itAsRoot([], "a host name is looked up and the session runs, not a SIGABRT", async () => {
    const r = await limitedClient(6, ["-y", "-y", "-i", key, "-p", String(server.port), `${LOGIN}@localhost`, "echo looked-up"]);
    expect(r.stderr).not.toMatch(/Aborted|internal error/);
    expect(r.stdout).toBe("looked-up\n");
    expect(r.status).toBe(0);
  });

  itAsRoot([], "-L with a listen name: the forward's name is looked up too", async () => {
    const r = await limitedClient(6, ["-y", "-y", "-i", key, "-L", "localhost:0:127.0.0.1:1", "-p", String(server.port), `${LOGIN}@127.0.0.1`, "echo forwarded"]);
    expect(r.stderr).not.toMatch(/Aborted|internal error/);
    expect(r.stdout).toBe("forwarded\n");
    expect(r.status).toBe(0);
  });

  itAsRoot([], "an unknown name still fails with getaddrinfo's words", async () => {
    const r = await limitedClient(6, ["-y", "-y", "-i", key, "-p", String(server.port), `${LOGIN}@nonexistent.invalid`, "true"]);
    expect(r.stderr).toMatch(/Error resolving 'nonexistent\.invalid' port '\d+'\. Name or service not known/);
    expect(r.status).toBe(1);
  });

  // A second Node process (the -f copy, the inner dbclient of a multihop) with room for its main
  // thread and Node's delayed-task thread but not its V8 worker waits for ever in Node's start
  // (with room for the main thread alone, Node aborts with an assertion). The program is refused
  // at once instead, as C's fork() is, and says why. Which limit leaves which room depends on the
  // threads of the running Node, so each limit of a range must give one of the two clean ends.
  const LIMITS = [6, 7, 8, 9, 10];

  /** Every run either did its work or failed with `refused`, status 1: never a hang or an abort. */
  async function cleanAtEveryLimit(args: string[], refused: RegExp): Promise<void> {
    const ends: string[] = [];
    for (const limit of LIMITS) {
      // An earlier run's background copy counts against the limit until it has gone.
      await expect.poll(() => spawnSync("pgrep", ["-u", String(client.uid)]).status, { timeout: 15_000 }).toBe(1);
      const r = await limitedClient(limit, args, 20_000);
      const end = r.status === 0 ? "ran" : r.status === 1 && refused.test(r.stderr) ? "refused" : `status ${r.status}: ${r.stderr}`;
      ends.push(`${limit}: ${end}`);
    }
    expect(ends.filter((e) => !/: (ran|refused)$/.test(e))).toEqual([]);
    // The range reaches from refused to running.
    expect(ends.some((e) => e.endsWith("refused"))).toBe(true);
  }

  itAsRoot([], "-f near the limit: 'Backgrounding failed', status 1, never a hang", async () => {
    await cleanAtEveryLimit(["-f", "-y", "-y", "-i", key, "-p", String(server.port), `${LOGIN}@127.0.0.1`, "true"], /Backgrounding failed: spawn \S+ EAGAIN/);
  }, 180_000);

  itAsRoot([], "multihop near the limit: the inner dbclient refused with a message, status 1, never a hang", async () => {
    const hop = `${LOGIN}@127.0.0.1/${server.port}`;
    await cleanAtEveryLimit(["-y", "-y", "-i", key, `${hop},${hop}`, "true"], /Failed to run '\S+': spawn \S+ EAGAIN/);
  }, 180_000);
});

describe("dbclient under RLIMIT_NOFILE", () => {
  // Node itself needs some twenty descriptors to start (C's dbclient a handful). Just above that,
  // the -f copy's spawn fails for want of descriptors (EMFILE): Node then makes no stdio for the
  // child, and reading its pipe was an internal error (a TypeError) instead of C's daemon()
  // message. Which limits fall in that window depends on the running Node: a range is tried.
  itAsRoot([], "-f out of descriptors for the copy: 'Backgrounding failed', not an internal error", async () => {
    const ends: string[] = [];
    for (let limit = 20; limit <= 32; limit++) {
      const r = await limitedClient(limit, ["-f", "-y", "-y", "-i", key, "-p", String(server.port), `${LOGIN}@127.0.0.1`, "true"], 20_000, "nofile");
      expect(r.stderr).not.toMatch(/TypeError|Cannot read properties/);
      ends.push(r.status === 0 ? "ran" : r.stderr);
    }
    expect(ends.some((e) => /Backgrounding failed: spawn \S+ EMFILE/.test(e))).toBe(true);
    expect(ends[ends.length - 1]).toBe("ran");
  }, 300_000);

  // Just above what Node needs to start, what dbclient loads on first use (the FFI library,
  // Poly1305's module) cannot be opened: that was an "internal error" with a stack trace, or an
  // uncaught exception as the exit restored stdio's flags. Now a one-line exit, status 1.
  itAsRoot([], "just above what Node needs: a clean exit naming the limit, never an internal error", async () => {
    // The lowest limit at which this Node starts and reads a script (below it Node itself fails).
    const script = join(work.dir, "empty.cjs");
    writeFileSync(script, "");
    let lowest = 12;
    while (lowest < 40 && spawnSync("prlimit", [`--nofile=${lowest}:${lowest}`, process.execPath, script]).status !== 0) lowest++;
    const ends: string[] = [];
    for (let limit = lowest; limit <= lowest + 12; limit++) {
      const r = await limitedClient(limit, ["-y", "-y", "-i", key, "-p", String(server.port), `${LOGIN}@127.0.0.1`, "echo ran"], 20_000, "nofile");
      ends.push(r.status === 0 && r.stdout === "ran\n" ? "ran" : `${r.status}: ${r.stderr.trim()}`);
    }
    // Under a hard limit of 20 or less the bin script refuses before Node starts (Node 24 crashes there).
    const refused = /^1: dbclient: Node\.js needs at least 21 open files, and the hard limit is \d+ \(ulimit -Hn\)$/;
    const clean = /^1: (dbclient: Caution, skipping hostkey check for 127\.0\.0\.1\s+)?dbclient: Connection to \S+ exited: (Connect failed: )?Too many open files( \(\w+ '[^']+'\))?$/;
    expect(ends.filter((e) => e !== "ran" && !clean.test(e) && !refused.test(e))).toEqual([]);
    // (Node 20.20 leaves such a window, where the exits come; Node 24.22 needs more to start and none.)
    expect(ends[ends.length - 1]).toBe("ran");
  }, 300_000);
});
