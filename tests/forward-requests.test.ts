import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { IS_ROOT, hasAsyncssh, itAsyncssh, PYTHON } from "./helpers/peers.js";
import { opensshKeygen, run, scratch, type Server, startOurDropbearWithHostKey } from "./helpers/servers.js";
import { startEchoTarget, type Target } from "./helpers/tunnel.js";
import { addTestUser, authorizeKeys, removeTestUser, type TestUser } from "./helpers/users.js";

// Issue 9, "Done when": bad forwarding requests (a port out of range, a socket path too long,
// a cancel for a listener that does not exist) are refused cleanly and the session goes on.
// OpenSSH's ssh will not send such requests, so a small asyncssh client (Debian's
// python3-asyncssh, as Dropbear's own test suite uses) sends them as raw requests.

const USER = "dbtsfwdreq";
const work = scratch("dbts-fwdreq-");
let user: TestUser;
let ours: Server;
let echo: Target;
const key = join(work.dir, "id_ed25519");

// Each step prints one JSON line; a request's reply is "success" or "failure".
const CLIENT = `
import asyncio, json, os, sys, warnings
warnings.simplefilter("ignore")
import asyncssh
from asyncssh.packet import String, UInt32
port, user, key, echo_port, plain_file, live = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]

def out(step, result):
    print(json.dumps({"step": step, "result": result}), flush=True)

async def request(conn, name, *args):
    kind, _ = await conn._make_global_request(name, *args)
    return "success" if kind == 81 else "failure"

async def opens(coro):
    try:
        reader, writer = await coro
        writer.close()
        return "opened"
    except asyncssh.ChannelOpenError as e:
        return "refused"

async def main():
    async with asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=None) as conn:
        out("tcpip-forward port 70000", await request(conn, b"tcpip-forward", String("127.0.0.1"), UInt32(70000)))
        out("tcpip-forward port 2^32-1", await request(conn, b"tcpip-forward", String("127.0.0.1"), UInt32(0xFFFFFFFF)))
        out("cancel of a listener that does not exist", await request(conn, b"cancel-tcpip-forward", String("127.0.0.1"), UInt32(1)))
        out("streamlocal-forward path too long", await request(conn, b"streamlocal-forward@openssh.com", String("/tmp/" + "x" * 200)))
        out("streamlocal-forward empty path", await request(conn, b"streamlocal-forward@openssh.com", String("")))
        out("streamlocal-forward onto a regular file", await request(conn, b"streamlocal-forward@openssh.com", String(plain_file)))
        out("cancel of a socket that is not forwarded", await request(conn, b"cancel-streamlocal-forward@openssh.com", String("/tmp/not-forwarded.sock")))
        out("streamlocal-forward", await request(conn, b"streamlocal-forward@openssh.com", String(live)))
        out("streamlocal-forward of the same path again", await request(conn, b"streamlocal-forward@openssh.com", String(live)))
        async with asyncssh.connect("127.0.0.1", port, username=user, client_keys=[key], known_hosts=None) as conn2:
            out("the same path from another connection", await request(conn2, b"streamlocal-forward@openssh.com", String(live)))
            out("cancel in the first connection", await request(conn, b"cancel-streamlocal-forward@openssh.com", String(live)))
            out("the socket after the cancel", "kept" if os.path.exists(live) else "removed")
            out("the same path from another connection once free", await request(conn2, b"streamlocal-forward@openssh.com", String(live)))
        out("direct-tcpip to port 70000", await opens(conn.open_connection("127.0.0.1", 70000)))
        out("direct-streamlocal path too long", await opens(conn.open_unix_connection("/tmp/" + "y" * 200)))
        out("direct-streamlocal empty path", await opens(conn.open_unix_connection("")))
        # The session goes on: a good forward, a command, a good direct-tcpip.
        out("tcpip-forward port 0", await request(conn, b"tcpip-forward", String("127.0.0.1"), UInt32(0)))
        r = await conn.run("echo still-here", check=False)
        out("command", r.stdout)
        out("direct-tcpip to the echo target", await opens(conn.open_connection("127.0.0.1", echo_port)))

asyncio.run(main())
`;

beforeAll(async () => {
  if (!IS_ROOT || !hasAsyncssh) return;
  user = addTestUser(USER);
  opensshKeygen(key);
  authorizeKeys(user, `${key}.pub`);
  ours = await startOurDropbearWithHostKey(work.dir);
  echo = await startEchoTarget();
}, 60_000);

afterAll(async () => {
  await ours?.stop();
  await echo?.close();
  if (IS_ROOT && hasAsyncssh) removeTestUser(USER);
  work.cleanup();
}, 60_000);

describe("bad forwarding requests to our server", () => {
  itAsyncssh("a port out of range, a path too long or already forwarded, a cancel of nothing: each refused, and the session goes on", async () => {
    const script = join(work.dir, "client.py");
    writeFileSync(script, CLIENT);
    // A file of the user's where a socket would go: not deleted to make room (as sshd; C would).
    const plain = join(user.home, "not-a-socket");
    writeFileSync(plain, "keep me\n");
    const r = await run(PYTHON, [script, String(ours.port), USER, key, String(echo.port), plain, join(user.home, "live.sock")], { timeoutMs: 45_000 });
    const got = Object.fromEntries(
      r.stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { step: string; result: string })
        .map((o) => [o.step, o.result]),
    );
    expect(got, r.stderr).toEqual({
      "tcpip-forward port 70000": "failure",
      "tcpip-forward port 2^32-1": "failure",
      "cancel of a listener that does not exist": "failure",
      "streamlocal-forward path too long": "failure",
      "streamlocal-forward empty path": "failure",
      "streamlocal-forward onto a regular file": "failure",
      "cancel of a socket that is not forwarded": "failure",
      "streamlocal-forward": "success",
      "streamlocal-forward of the same path again": "failure",
      "the same path from another connection": "failure",
      "cancel in the first connection": "success",
      "the socket after the cancel": "removed",
      "the same path from another connection once free": "success",
      "direct-tcpip to port 70000": "refused",
      "direct-streamlocal path too long": "refused",
      "direct-streamlocal empty path": "refused",
      "tcpip-forward port 0": "success",
      command: "still-here\n",
      "direct-tcpip to the echo target": "opened",
    });
    expect(r.status).toBe(0);
    expect(readFileSync(plain, "utf8")).toBe("keep me\n");
    // The server is still up and took no harm: its log has no crash.
    expect(ours.child.exitCode).toBeNull();
    expect(ours.log()).not.toMatch(/TypeError|RangeError|is invalid|at .*\.js:\d+/);
  });
});
