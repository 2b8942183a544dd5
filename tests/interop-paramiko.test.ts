import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { IS_ROOT, PYTHON, itParamiko } from "./helpers/peers.js";
import { opensshKeygen, run, runOurClient, scratch, startOurDropbearWithHostKey, startPeerServer, type Server } from "./helpers/servers.js";
import { addTestUser, authorizeKeys, removeTestUser } from "./helpers/users.js";

// Debian's python3-paramiko (2.12), both ways: as the server of our dbclient with dbclient's
// defaults (paramiko's server fails the key exchange on a wrong first-kex guess, its issue
// #418, which is why our dbclient sends none: docs/deviations.md), and as the client of our
// dropbear (exec, SFTP, and made-up FIDO sk- keys signed as their authenticator would).
// tests/helpers/paramiko-peer.py is the python side.

const USER = "dbtsparamiko";
const PASSWORD = "paramiko-interop-pw"; // what paramiko-peer.py's server takes from anyone
const PEER = join(fileURLToPath(new URL("./helpers/", import.meta.url)), "paramiko-peer.py");
const work = scratch("dbts-paramiko-");
let pmServer: { port: number; stop: () => Promise<void> } | null = null;
let pmPort = 0;
let ours: Server | null = null;
let key = "";

beforeAll(async () => {
  if (!IS_ROOT) return;
  opensshKeygen(join(work.dir, "hk"), { comment: "paramiko-host" });
  pmServer = await startPeerServer(PYTHON, [PEER, "server", work.dir]);
  pmPort = pmServer.port;
  const user = addTestUser(USER);
  key = join(work.dir, "id_ed25519");
  opensshKeygen(key, { comment: "paramiko-client" });
  // Made-up FIDO keys (paramiko-peer.py signs as their authenticator): skeda and skeca plain,
  // skedb with no-touch-required.
  for (const name of ["skeda", "skeca", "skedb"]) {
    writeFileSync(join(work.dir, `${name}.pub`), (await run(PYTHON, [PEER, "sk-line", name])).stdout);
  }
  const sk = (name: string): string => join(work.dir, `${name}.pub`);
  authorizeKeys(user, `${key}.pub`, sk("skeda"), sk("skeca"), { pub: sk("skedb"), options: "no-touch-required" });
  ours = await startOurDropbearWithHostKey(work.dir);
}, 60_000);

afterAll(async () => {
  await pmServer?.stop();
  await ours?.stop();
  if (IS_ROOT) removeTestUser(USER);
  work.cleanup();
});

/** Our dbclient against the paramiko server, with its defaults but the password, -y and `opts`. */
function dbclient(args: string[], opts: string[] = []): ReturnType<typeof runOurClient> {
  return runOurClient(["-y", "-p", String(pmPort), ...opts, `${USER}@127.0.0.1`, ...args], { env: { HOME: work.dir, DROPBEAR_PASSWORD: PASSWORD } });
}

describe("paramiko", () => {
  itParamiko("its server runs our dbclient's commands with dbclient's defaults (no first-kex guess to trip it)", async () => {
    const r = await dbclient(["echo", "from paramiko"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("from paramiko\n");
    expect((await dbclient(["exit", "3"])).status).toBe(3);
    // -y remembered the key paramiko served.
    const hostPub = readFileSync(join(work.dir, "hk.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    expect(readFileSync(join(work.dir, ".ssh", "known_hosts"), "utf8")).toContain(hostPub);
  });

  itParamiko("-o Compression=yes: its server's output inflates intact; a zlib stream it ends mid-session is 'zlib error', that packet's data not shown", async () => {
    const ok = await dbclient(["echo", "compressed ".repeat(5000).trim()], ["-o", "Compression=yes"]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toBe(`${"compressed ".repeat(5000).trim()}\n`);
    // zlib's inflate says Z_STREAM_END, which Dropbear takes as an error; pako's said Z_OK.
    const r = await dbclient(["zlib-end", "ended"], ["-o", "Compression=yes"]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/exited: zlib error\n$/);
  });

  itParamiko("its client runs a command on our dropbear and moves 1 MiB each way over SFTP", async () => {
    const r = await run(PYTHON, [PEER, "client", String(ours!.port), USER, key, "echo hello; exit 5", "pm-sftp.bin"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split("\n").map((l) => JSON.parse(l) as unknown)).toEqual([{ out: "hello\n", status: 5 }, { sftp: true }]);
  });

  itParamiko("sk- user keys: our dropbear wants the authenticator's user-presence flag unless no-touch-required, as C", async () => {
    const auth = async (...tries: string[]): Promise<unknown> =>
      JSON.parse((await run(PYTHON, [PEER, "sk-auth", String(ours!.port), USER, ...tries])).stdout) as unknown;
    // Good signatures all; flags 00 (no touch) and 04 (verified, no touch) are refused.
    expect(await auth("skeca:00", "skeda:00", "skeda:04", "skeca:01")).toEqual([false, false, false, true]);
    expect(await auth("skeda:01")).toEqual([true]);
    expect(await auth("skedb:00")).toEqual([true]);
  });
});
