import { createHash } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import ssh2 from "ssh2";
import type { Algorithms, ClientChannel, ConnectConfig, SFTPWrapper } from "ssh2";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { IS_ROOT, itAsRoot } from "./helpers/peers.js";
import { OURS, freePort, opensshKeygen, runOurClient, scratch, startOurDropbearWithHostKeys, type Server } from "./helpers/servers.js";
import { echoRoundTrip, payload, startEchoTarget, startTunnel, type Target } from "./helpers/tunnel.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// The Node world's usual SSH library, ssh2 (mscdex), both ways: its Client against our dropbear
// (every algorithm both sides have, exec, a pty shell, SFTP, both kinds of forwarding) and its
// Server under our dbclient (exec and its exit code, -L, -R). Pure JavaScript: its optional
// native parts are not built (package.json's allowScripts).

const { Client, Server: Ssh2Server } = ssh2;

const USER = "dbtsssh2";
const work = scratch("dbts-ssh2-");
let userKey = "";
let home = "";
let ours: Server;
let echo: Target;

/** What both sides have: our tables (`dropbear -Q …`) against ssh2 1.17's. */
const KEX = [
  "curve25519-sha256",
  "curve25519-sha256@libssh.org",
  "ecdh-sha2-nistp256",
  "ecdh-sha2-nistp384",
  "ecdh-sha2-nistp521",
  "diffie-hellman-group14-sha256",
  "diffie-hellman-group16-sha512",
];
const CIPHERS = ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"];
const MACS = ["hmac-sha2-256", "hmac-sha2-512", "hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"];
const HOSTKEYS = ["ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-256", "rsa-sha2-512"];

const sha = (b: Uint8Array | string): string => createHash("sha256").update(b).digest("hex");

/** An ssh2 client connected to our dropbear as USER (with these algorithms), ready. */
async function connect(algorithms?: Algorithms): Promise<InstanceType<typeof Client>> {
  const c = new Client();
  const config: ConnectConfig = { host: "127.0.0.1", port: ours.port, username: USER, privateKey: readFileSync(userKey), readyTimeout: 20_000, ...(algorithms ? { algorithms } : {}) };
  const ready = once(c, "ready");
  c.connect(config);
  await ready;
  return c;
}

/**
 * Run `command` on an open client; stdout, stderr and the exit code. The listeners go on inside
 * exec's callback: ssh2 may handle the output, exit-status and close in the same read.
 */
function exec(c: InstanceType<typeof Client>, command: string, input?: Buffer): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve, reject) =>
    c.exec(command, (e, st) => {
      if (e) {
        reject(e);
        return;
      }
      let out = "";
      let err = "";
      let code: number | null = null;
      st.on("data", (d: Buffer) => (out += d.toString()));
      st.stderr.on("data", (d: Buffer) => (err += d.toString()));
      st.on("exit", (x: number | null) => (code = x));
      st.on("close", () => resolve({ out, err, code }));
      st.end(input);
    }),
  );
}

beforeAll(async () => {
  if (!IS_ROOT) return;
  const u = addTestUser(USER);
  home = u.home;
  userKey = opensshKeygen(join(work.dir, "id_ed25519"), { comment: "ssh2" });
  authorizeKeys(u, `${userKey}.pub`);
  ours = (await startOurDropbearWithHostKeys(work.dir, ["ed25519", "ecdsa", "rsa"])).server;
  echo = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  await echo?.close();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("ssh2's Client against our dropbear", () => {
  itAsRoot([], "runs a command: stdout, stderr and the exit code", async () => {
    const c = await connect();
    try {
      expect(await exec(c, "echo out; echo err >&2; exit 4")).toEqual({ out: "out\n", err: "err\n", code: 4 });
    } finally {
      c.end();
    }
  });

  itAsRoot([], "data, EOF and a disconnect at once: a command not yet reading still gets all of it", async () => {
    const c = await connect();
    const file = join(home, "upload");
    const data = payload(1 << 20);
    await new Promise<void>((resolve, reject) =>
      c.exec("sleep 1; cat > upload", (e, st) => {
        if (e) return reject(e);
        // Within our window, so all of it is sent before the command reads any.
        st.end(data, () => {
          c.end();
          resolve();
        });
      }),
    );
    // The connection process goes once the command has taken it all (at most EXIT_FLUSH_MS).
    let got: Buffer | null = null;
    for (let i = 0; i < 50 && got?.length !== data.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        got = readFileSync(file);
      } catch {
        got = null;
      }
    }
    expect(got?.length).toBe(data.length);
    expect(sha(got!)).toBe(sha(data));
  });

  itAsRoot([], "every key exchange, cipher, MAC and host key type both have: 256 KiB through sha256sum", async () => {
    const data = payload(256 * 1024);
    const cases: Algorithms[] = [
      ...KEX.map((k) => ({ kex: [k] }) as Algorithms),
      ...CIPHERS.map((x) => ({ cipher: [x] }) as Algorithms),
      ...MACS.map((m) => ({ cipher: ["aes128-ctr"], hmac: [m] }) as Algorithms),
      ...HOSTKEYS.map((h) => ({ serverHostKey: [h] }) as Algorithms),
    ];
    for (const algorithms of cases) {
      const c = await connect(algorithms);
      try {
        const r = await exec(c, "sha256sum", data);
        expect(r.out.split(" ")[0], JSON.stringify(algorithms)).toBe(sha(data));
        expect(r.code).toBe(0);
      } finally {
        c.end();
      }
    }
  }, 120_000);

  itAsRoot([], "a pty shell with the size asked for, and a window change", async () => {
    const c = await connect();
    try {
      const sh = await new Promise<ClientChannel>((resolve, reject) => c.shell({ term: "vt100", rows: 30, cols: 100 }, (e, s) => (e ? reject(e) : resolve(s))));
      let out = "";
      sh.on("data", (d: Buffer) => (out += d.toString()));
      const closed = once(sh, "close");
      sh.write("echo T=$TERM; stty size\n");
      await expect.poll(() => out, { timeout: 10_000 }).toMatch(/30 100/);
      sh.setWindow(40, 120, 0, 0);
      sh.write("stty size; exit 0\n");
      await closed;
      expect(out).toMatch(/T=vt100/);
      expect(out).toMatch(/40 120/);
    } finally {
      c.end();
    }
  });

  itAsRoot(["sftp-server"], "SFTP: 2 MB written and read back intact, the file is the user's", async () => {
    const c = await connect();
    try {
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => c.sftp((e, s) => (e ? reject(e) : resolve(s))));
      const data = payload(2_000_000);
      const path = `/home/${USER}/ssh2.bin`;
      await new Promise<void>((resolve, reject) => sftp.writeFile(path, data, (e) => (e ? reject(e) : resolve())));
      const back = await new Promise<Buffer>((resolve, reject) => sftp.readFile(path, (e, d) => (e ? reject(e) : resolve(d))));
      expect(sha(back)).toBe(sha(data));
      const st = await new Promise<{ uid: number }>((resolve, reject) => sftp.stat(path, (e, s) => (e ? reject(e) : resolve(s))));
      expect(st.uid).not.toBe(0);
    } finally {
      c.end();
    }
  });

  itAsRoot([], "forwardOut (direct-tcpip): 1 MB echoed intact; a closed port is refused and the session goes on", async () => {
    const c = await connect();
    try {
      const ch = await new Promise<ClientChannel>((resolve, reject) => c.forwardOut("127.0.0.1", 0, "127.0.0.1", echo.port, (e, s) => (e ? reject(e) : resolve(s))));
      const data = payload(1 << 20);
      const h = createHash("sha256");
      ch.on("data", (d: Buffer) => h.update(d));
      const closed = once(ch, "close");
      ch.end(data);
      await closed;
      expect(h.digest("hex")).toBe(sha(data));
      const closedPort = await freePort();
      const refused = await new Promise<Error | null>((resolve) => c.forwardOut("127.0.0.1", 0, "127.0.0.1", closedPort, (e, s) => (s?.close(), resolve(e ?? null))));
      expect(refused?.message).toMatch(/Connection refused/);
      expect((await exec(c, "echo still")).out).toBe("still\n");
    } finally {
      c.end();
    }
  });

  itAsRoot([], "forwardIn (tcpip-forward) on port 0: the allocated port carries a connection back; unforwardIn frees it", async () => {
    const c = await connect();
    try {
      c.on("tcp connection", (_info, accept) => {
        const ch = accept();
        const sock = net.connect({ port: echo.port, host: "127.0.0.1", allowHalfOpen: true });
        ch.pipe(sock).pipe(ch);
      });
      const port = await new Promise<number>((resolve, reject) => c.forwardIn("127.0.0.1", 0, (e, p) => (e ? reject(e) : resolve(p))));
      expect(port).toBeGreaterThan(0);
      const rt = await echoRoundTrip(port, 1 << 20);
      expect(rt.gotHash).toBe(rt.sentHash);
      await new Promise<void>((resolve, reject) => c.unforwardIn("127.0.0.1", port, (e) => (e ? reject(e) : resolve())));
      const s = net.connect({ port, host: "127.0.0.1" });
      const [ev] = await Promise.race([once(s, "error").then(() => ["error"]), once(s, "connect").then(() => ["connect"])]);
      s.destroy();
      expect(ev).toBe("error");
    } finally {
      c.end();
    }
  });
});

describe("our dbclient against ssh2's Server", () => {
  let srv: InstanceType<typeof Ssh2Server> | null = null;
  let srvPort = 0;

  beforeAll(async () => {
    if (!IS_ROOT) return;
    // Not ssh2's utils.generateKeyPairSync("ed25519"): about 1 key in 300 that it makes, its own
    // parser then rejects ("Malformed OpenSSH private key"), on Node 20 and 24 alike.
    const hostKey = readFileSync(opensshKeygen(join(work.dir, "ssh2_host_ed25519")));
    srv = new Ssh2Server({ hostKeys: [hostKey] }, (client) => {
      client.on("authentication", (ctx) => (ctx.method === "publickey" ? ctx.accept() : ctx.reject(["publickey"])));
      client.on("ready", () => {
        client.on("session", (accept) => {
          const session = accept();
          session.on("exec", (acc, _rej, info) => {
            const st = acc();
            st.write(`ran:${info.command}\n`);
            st.stderr.write("to stderr\n");
            st.exit(7);
            st.end();
          });
        });
        client.on("tcpip", (accept, reject, info) => {
          const sock = net.connect({ port: info.destPort, host: info.destIP, allowHalfOpen: true });
          sock.once("connect", () => {
            const ch = accept();
            ch.pipe(sock).pipe(ch);
          });
          sock.once("error", () => reject());
        });
        client.on("request", (accept, reject, name, info) => {
          if (name !== "tcpip-forward" || !accept || !reject) {
            reject?.();
            return;
          }
          const fwd = info as { bindAddr: string; bindPort: number };
          const l = net.createServer({ allowHalfOpen: true }, (sock) => {
            client.forwardOut(fwd.bindAddr, fwd.bindPort, sock.remoteAddress ?? "", sock.remotePort ?? 0, (e, ch) => (e ? sock.destroy() : sock.pipe(ch).pipe(sock)));
          });
          l.listen(fwd.bindPort, fwd.bindAddr, () => accept());
          client.on("close", () => l.close());
        });
      });
      client.on("error", () => undefined);
    });
    srv.listen(0, "127.0.0.1");
    await once(srv, "listening");
    srvPort = (srv.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((r) => (srv ? srv.close(() => r()) : r()));
  });

  const clientArgs = (): string[] => ["-y", "-i", userKey, "-p", String(srvPort)];

  itAsRoot([], "exec: the command's output, stderr and exit code come back", async () => {
    const r = await runOurClient([...clientArgs(), `${USER}@127.0.0.1`, "echo hi"], { timeoutMs: 30_000 });
    expect(r.stdout).toBe("ran:echo hi\n");
    expect(r.stderr).toContain("to stderr\n");
    expect(r.status).toBe(7);
  });

  itAsRoot([], "-L and -R each carry 1 MB both ways intact", async () => {
    const [lport, rport] = [await freePort(), await freePort()];
    const t = await startTunnel(process.execPath, [OURS.dbclient, ...clientArgs(), "-N", "-L", `${lport}:127.0.0.1:${echo.port}`, "-R", `${rport}:127.0.0.1:${echo.port}`, `${USER}@127.0.0.1`], lport);
    try {
      const viaL = await echoRoundTrip(lport, 1 << 20);
      expect(viaL.gotHash).toBe(viaL.sentHash);
      await expect
        .poll(async () => {
          const s = net.connect({ port: rport, host: "127.0.0.1" });
          const ok = await Promise.race([once(s, "connect").then(() => true), once(s, "error").then(() => false)]);
          s.destroy();
          return ok;
        }, { timeout: 15_000, interval: 100 })
        .toBe(true);
      // ssh2's Server closes a channel it made with forwardOut at its first EOF, so this one
      // reads the whole echo back before closing rather than half-closing first.
      const data = payload(1 << 20);
      const s = net.connect({ port: rport, host: "127.0.0.1" });
      const chunks: Buffer[] = [];
      let got = 0;
      const back = new Promise<void>((resolve, reject) => {
        s.on("error", reject);
        s.on("data", (d: Buffer) => {
          chunks.push(d);
          got += d.length;
          if (got >= data.length) resolve();
        });
      });
      s.write(data);
      await back;
      s.destroy();
      expect(sha(Buffer.concat(chunks))).toBe(sha(data));
    } finally {
      await t.stop();
    }
  });
});
