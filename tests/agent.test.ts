import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PEERS, itAsRoot, type PeerName } from "./helpers/peers.js";
import { OURS, opensshKeygen, run, runOurClient, type RunResult, scratch, type Server, startOurDropbearWithHostKey, startSshAgent, startSshd } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Issue 8: agent forwarding both ways, with real processes over loopback. A local ssh-agent
// holds a key that is NOT authorized anywhere; the login uses another key. So the agent's key
// showing up in `ssh-add -l` on the far side can only come through the forwarded agent.
// Needs root (to create the throw-away user), as CI has; elsewhere these tests skip.

const USER = "dbtsagentfwd";
const isRoot = process.getuid?.() === 0;
const work = scratch("dbts-agentfwd-e2e-");
let home = "";
let uid = 0;
let gid = 0;
let agent: ChildProcess | null = null;
const agentSock = join(work.dir, "agent.sock");
let agentFingerprint = "";
const keys: Record<string, string> = {};
const servers: Server[] = [];

const itAgent = (peers: PeerName[], title: string, fn: () => Promise<void>): void => itAsRoot(peers, title, fn);

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
}

function sshKeygen(name: string): string {
  const f = join(work.dir, name);
  return opensshKeygen(f, { comment: name });
}

beforeAll(async () => {
  if (!isRoot) return;
  ({ home, uid, gid } = addTestUser(USER));
  keys.login = sshKeygen("id_login");
  keys.restricted = sshKeygen("id_restricted");
  keys.agent = sshKeygen("id_agent");
  authorizeKeys({ home, uid, gid }, `${keys.login}.pub`, { pub: `${keys.restricted}.pub`, options: "no-agent-forwarding" });

  agent = await startSshAgent(agentSock);
  sh(PEERS["ssh-add"], ["-q", keys.agent], undefined);
  agentFingerprint = sh(PEERS["ssh-keygen"], ["-l", "-f", `${keys.agent}.pub`]).split(" ")[1]!;
}, 60_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  agent?.kill();
  if (isRoot) removeTestUser(USER);
  work.cleanup();
});

// ssh-add run by beforeAll must reach the test agent.
process.env.SSH_AUTH_SOCK = agentSock;

let ours: Server | null = null;
async function ourServer(): Promise<Server> {
  if (ours === null) {
    ours = await startOurDropbearWithHostKey(work.dir);
    servers.push(ours);
  }
  return ours;
}

let sshd: Server | null = null;
async function sshdServer(): Promise<Server> {
  if (sshd === null) {
    const d = join(work.dir, "sshd");
    mkdirSync(d, { recursive: true });
    sshd = await startSshd(d, ["AllowAgentForwarding yes", "PubkeyAuthentication yes", "PasswordAuthentication no"]);
    servers.push(sshd);
  }
  return sshd;
}

/** What the far side prints: where its agent socket is, then what that agent holds. */
const REMOTE = 'echo "sock=[$SSH_AUTH_SOCK]"; ssh-add -l; echo "rc=$?"';

const SSH_COMMON = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"];

function openssh(port: number, extra: string[], cmd = REMOTE): Promise<RunResult> {
  return run(PEERS.ssh, [...SSH_COMMON, ...extra, "-p", String(port), `${USER}@127.0.0.1`, cmd], { env: { SSH_AUTH_SOCK: agentSock }, timeoutMs: 20_000 });
}

async function ourClient(port: number, extra: string[], cmd = REMOTE): Promise<RunResult> {
  const h = scratch("dbts-agentfwd-clienthome-");
  try {
    return await runOurClient(["-y", "-y", ...extra, "-p", String(port), `${USER}@127.0.0.1`, cmd], { env: { HOME: h.dir, SSH_AUTH_SOCK: agentSock }, timeoutMs: 20_000 });
  } finally {
    h.cleanup();
  }
}

function remoteSock(r: RunResult): string {
  return /sock=\[([^\]]*)\]/.exec(r.stdout)?.[1] ?? "(no output)";
}

function expectForwarded(r: RunResult): void {
  const info = `status ${r.status}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  expect(remoteSock(r), info).not.toBe("");
  expect(r.stdout, info).toContain(agentFingerprint);
  expect(r.stdout, info).toContain("rc=0");
}

describe("ssh -A (OpenSSH) -> our dropbear", () => {
  itAgent(["ssh", "ssh-agent", "ssh-add"], "ssh-add -l on the server side lists the local agent's key; the socket goes away with the session", async () => {
    const s = await ourServer();
    const r = await openssh(s.port, ["-A", "-i", keys.login!]);
    expectForwarded(r);
    const sock = remoteSock(r);
    expect(sock).toMatch(/^\/tmp\/dropbear-[0-9a-f]{8}\/auth-[0-9a-f]{8}-\d+$/);
    await expect.poll(() => existsSync(sock), { timeout: 5000 }).toBe(false);
    await expect.poll(() => existsSync(sock.replace(/\/[^/]+$/, "")), { timeout: 5000 }).toBe(false);
  });

  itAgent(["ssh", "ssh-agent", "ssh-add"], "without -A the child has no SSH_AUTH_SOCK", async () => {
    const s = await ourServer();
    const r = await openssh(s.port, ["-a", "-i", keys.login!]);
    expect(remoteSock(r), r.stdout + r.stderr).toBe("");
    expect(r.stdout).not.toContain(agentFingerprint);
  });

  itAgent(["ssh", "ssh-agent", "ssh-add"], "an authorized_keys no-agent-forwarding line refuses it", async () => {
    const s = await ourServer();
    const r = await openssh(s.port, ["-A", "-i", keys.restricted!]);
    expect(remoteSock(r), r.stdout + r.stderr).toBe("");
    expect(r.stdout).not.toContain(agentFingerprint);
  });
});

describe("Debian's dbclient -A -> our dropbear", () => {
  itAgent(["dbclient", "dropbearconvert", "ssh-agent", "ssh-add"], "remote ssh-add -l lists the local agent's key", async () => {
    const s = await ourServer();
    const h = scratch("dbts-agentfwd-debhome-");
    try {
      // Dropbear 2022.83 reads only its own key format.
      const dbkey = join(h.dir, "id_login.db");
      sh(PEERS.dropbearconvert, ["openssh", "dropbear", keys.login!, dbkey]);
      const r = await run(PEERS.dbclient, ["-y", "-y", "-A", "-i", dbkey, "-p", String(s.port), `${USER}@127.0.0.1`, REMOTE], {
        env: { HOME: h.dir, SSH_AUTH_SOCK: agentSock },
        timeoutMs: 20_000,
      });
      expectForwarded(r);
    } finally {
      h.cleanup();
    }
  });
});

describe("our dbclient -A", () => {
  itAgent(["sshd", "ssh-agent", "ssh-add"], "to OpenSSH sshd: remote ssh-add -l lists the local agent's key", async () => {
    const s = await sshdServer();
    const r = await ourClient(s.port, ["-A", "-i", keys.login!]);
    expectForwarded(r);
  });

  itAgent(["ssh-agent", "ssh-add"], "to our dropbear: remote ssh-add -l lists the local agent's key", async () => {
    const s = await ourServer();
    const r = await ourClient(s.port, ["-A", "-i", keys.login!]);
    expectForwarded(r);
  });

  itAgent(["ssh-agent", "ssh-add"], "to our dropbear: ten agent clients at once each get their own channel and answer", async () => {
    const s = await ourServer();
    const cmd = 'for i in 1 2 3 4 5 6 7 8 9 10; do (ssh-add -l >/dev/null && echo ok) & done; wait';
    const r = await ourClient(s.port, ["-A", "-i", keys.login!], cmd);
    expect(r.stdout.split("\n").filter((l) => l === "ok").length, r.stdout + r.stderr).toBe(10);
  });

  itAgent(["ssh-agent", "ssh-add"], "logs in with a key from an agent whose identity list is longer than Dropbear's 10000-byte reply limit", async () => {
    // Twelve keys with 1000-byte comments (as a hardware or password-manager agent may hold, or
    // some 18 RSA-4096 keys): the list was refused as too long and no agent key was offered.
    const sock = join(work.dir, "big-agent.sock");
    const big = await startSshAgent(sock);
    try {
      const env = { ...process.env, SSH_AUTH_SOCK: sock };
      execFileSync(PEERS["ssh-add"], ["-q", keys.login!], { env, stdio: "ignore" });
      for (let i = 0; i < 12; i++) {
        const k = opensshKeygen(join(work.dir, `id_long_comment_${i}`), { comment: `${"c".repeat(1000)}${i}` });
        execFileSync(PEERS["ssh-add"], ["-q", k], { env, stdio: "ignore" });
      }
      expect(execFileSync(PEERS["ssh-add"], ["-L"], { env }).length).toBeGreaterThan(12_000);
      const s = await ourServer();
      const h = scratch("dbts-agentfwd-clienthome-");
      try {
        const r = await runOurClient(["-y", "-y", "-o", "BatchMode=yes", "-p", String(s.port), `${USER}@127.0.0.1`, "echo in"], { env: { HOME: h.dir, SSH_AUTH_SOCK: sock }, timeoutMs: 20_000 });
        expect(r.stdout, r.stderr).toBe("in\n");
        expect(r.status).toBe(0);
      } finally {
        h.cleanup();
      }
    } finally {
      big.kill();
    }
  });

  itAgent(["sshd", "ssh-agent", "ssh-add"], "without -A the server's agent channel is not asked for", async () => {
    const s = await sshdServer();
    const r = await ourClient(s.port, ["-i", keys.login!]);
    expect(remoteSock(r), r.stdout + r.stderr).toBe("");
  });
});

describe("our dbclient -o IdentitiesOnly=yes", () => {
  itAgent(["ssh-agent", "ssh-add", "ssh-keygen"], "offers none of the agent's keys but those of its identity files, which the agent signs for when encrypted", async () => {
    const sock = join(work.dir, "only-agent.sock");
    const only = await startSshAgent(sock);
    const h = scratch("dbts-agentfwd-clienthome-");
    try {
      const env = { HOME: h.dir, SSH_AUTH_SOCK: sock };
      execFileSync(PEERS["ssh-add"], ["-q", keys.login!], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore" });
      const s = await ourServer();
      const login = (...extra: string[]) => runOurClient(["-y", "-y", "-o", "BatchMode=yes", ...extra, "-p", String(s.port), `${USER}@127.0.0.1`, "echo in"], { env, timeoutMs: 20_000 });
      // The agent's key alone logs in; not with IdentitiesOnly, the only key being the agent's.
      expect((await login()).stdout).toBe("in\n");
      const refused = await login("-o", "IdentitiesOnly=yes");
      expect(refused.stdout).toBe("");
      expect(refused.status).not.toBe(0);
      // The same key's file, under a passphrase nobody gives: the agent's copy signs for it.
      const locked = join(work.dir, "id_login_locked");
      copyFileSync(keys.login!, locked);
      execFileSync(PEERS["ssh-keygen"], ["-q", "-p", "-P", "", "-N", "not-given", "-f", locked], { stdio: "ignore" });
      const viaFile = await login("-o", "IdentitiesOnly=yes", "-i", locked);
      expect(viaFile.stdout, viaFile.stderr).toBe("in\n");
    } finally {
      h.cleanup();
      only.kill();
    }
  });
});

describe("our dbclient and a local agent that never answers", () => {
  it("SIGINT or SIGTERM while it waits for the agent's key list ends it at once, by that signal, as C's", async () => {
    // Before, the blocking read of the reply went on under Node's handler: neither ^C nor a kill
    // did anything until the agent answered (one waiting on a confirm prompt or a token touch).
    const s = await ourServer();
    const sock = join(work.dir, "silent-agent.sock");
    const held: Socket[] = [];
    const silent = createServer((c) => held.push(c));
    silent.listen(sock);
    await once(silent, "listening");
    const h = scratch("dbts-agentfwd-silenthome-");
    try {
      for (const sig of ["SIGINT", "SIGTERM"] as const) {
        const asked = once(silent, "connection").then(([c]) => once(c as Socket, "data"));
        const child = spawn(process.execPath, [OURS.dbclient, "-y", "-y", "-p", String(s.port), "dbts-nouser@127.0.0.1", "true"], {
          env: { ...process.env, HOME: h.dir, SSH_AUTH_SOCK: sock },
          stdio: "ignore",
        });
        try {
          // The request has come: the client waits in its read of the reply.
          await asked;
          const gone = once(child, "exit");
          child.kill(sig);
          const timer = new Promise((r) => setTimeout(() => r(["still running"]), 5000));
          expect(await Promise.race([gone.then(() => child.signalCode), timer])).toBe(sig);
        } finally {
          child.kill("SIGKILL");
        }
      }
    } finally {
      for (const c of held) c.destroy();
      silent.close();
      h.cleanup();
    }
  }, 30_000);
});

describe("our dbclient and an agent socket path that is not UTF-8", () => {
  it("connects to $SSH_AUTH_SOCK by its bytes, as C's getenv gives them", async () => {
    // Before, the path was decoded as text (U+FFFD for the 0xff byte) and named no file:
    // "Failed to connect to agent", and no agent key was offered.
    const s = await ourServer();
    const held: Socket[] = [];
    const listener = createServer((c) => held.push(c));
    listener.listen(join(work.dir, "bytes-agent.sock"));
    await once(listener, "listening");
    // Node's listen takes only text: the non-UTF-8 name is a symlink to the socket.
    symlinkSync("bytes-agent.sock", Buffer.concat([Buffer.from(`${work.dir}/latin1-`), Buffer.from([0xff]), Buffer.from(".sock")]));
    const h = scratch("dbts-agentfwd-byteshome-");
    try {
      const asked = once(listener, "connection").then(([c]) => once(c as Socket, "data"));
      // Node's spawn passes the environment as text: the shell puts the byte in.
      const child = spawn("/bin/sh", ["-c", `SSH_AUTH_SOCK="$(printf '%s/latin1-\\377.sock' "$D")" exec "$@"`, "sh", process.execPath, OURS.dbclient, "-y", "-y", "-p", String(s.port), "dbts-nouser@127.0.0.1", "true"], {
        env: { ...process.env, HOME: h.dir, D: work.dir },
        stdio: "ignore",
      });
      try {
        const timer = new Promise((r) => setTimeout(() => r("no agent request"), 10_000));
        expect(await Promise.race([asked.then(() => "asked"), timer])).toBe("asked");
      } finally {
        child.kill("SIGKILL");
      }
    } finally {
      for (const c of held) c.destroy();
      listener.close();
      h.cleanup();
    }
  }, 30_000);
});
