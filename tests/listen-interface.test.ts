import { execFileSync, spawnSync } from "node:child_process";
import { once } from "node:events";
import * as net from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect } from "vitest";
import { itWithPeers } from "./helpers/peers.js";
import { OURS, freePort, scratch, startOurDropbear } from "./helpers/servers.js";

// Issue 9: dropbear -l <interface> binds its listeners to that device (SO_BINDTODEVICE), or it
// refuses to start; it never logs "Binding to interface" and then listens everywhere. `lo` is
// the only interface tests may use. (The -R listeners' case is in tests/streamlocal.test.ts.)

const work = scratch("dbts-iface-");
afterAll(() => work.cleanup());

function hostKey(): string {
  const f = join(work.dir, "host_ed25519");
  const r = spawnSync(process.execPath, [OURS.dropbearkey, "-t", "ed25519", "-f", f], { encoding: "utf8" });
  if (r.status !== 0 && !/exists/.test(r.stderr)) throw new Error(r.stderr);
  return f;
}

/** The listening sockets on `port` as ss(8) shows them ("127.0.0.1%lo:2222" when bound to lo). */
function listening(port: number): string[] {
  return execFileSync("ss", ["-Hltn", `sport = :${port}`], { encoding: "utf8" }).trim().split("\n").filter((l) => l !== "").map((l) => l.split(/\s+/)[3]!);
}

describe("dropbear -l <interface>", () => {
  itWithPeers([], "-l lo: every listening socket is bound to lo, and it serves", async () => {
    const s = await startOurDropbear(["-r", hostKey(), "-l", "lo"]);
    try {
      const socks = listening(s.port);
      expect(socks.length).toBeGreaterThan(0);
      for (const l of socks) expect(l).toMatch(/%lo:/);
      const c = net.connect(s.port, "127.0.0.1");
      const [banner] = (await once(c, "data")) as [Buffer];
      c.destroy();
      expect(banner.toString()).toMatch(/^SSH-2\.0-/);
    } finally {
      await s.stop();
    }
  });

  itWithPeers([], "-l with a device that does not exist: refuses to start, saying why, and listens nowhere", async () => {
    const port = await freePort();
    const r = spawnSync(process.execPath, [OURS.dropbear, "-F", "-E", "-r", hostKey(), "-l", "nosuchif0", "-p", `127.0.0.1:${port}`], { encoding: "utf8", timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Couldn't set SO_BINDTODEVICE: No such device/);
    expect(r.stderr).toMatch(/No listening ports available/);
    expect(listening(port)).toEqual([]);
  });
});
