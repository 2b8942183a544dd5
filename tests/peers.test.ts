import { spawnSync } from "node:child_process";
import { describe, expect } from "vitest";
import { PEERS, itWithPeers } from "./helpers/peers.js";

/** The interop peers CI installs are there and are the versions the tests are written for. */
describe("Debian interop peers", () => {
  itWithPeers(["ssh"], "OpenSSH client 9.x", () => {
    const r = spawnSync(PEERS.ssh, ["-V"], { encoding: "utf8" });
    expect(r.stderr).toMatch(/^OpenSSH_9\.\d/);
  });

  itWithPeers(["sshd"], "OpenSSH server runs its config test", () => {
    const r = spawnSync(PEERS.sshd, ["-V"], { encoding: "utf8" });
    expect(r.stderr).toMatch(/OpenSSH_9\.\d/);
  });

  itWithPeers(["dropbear", "dbclient", "dropbearkey"], "Dropbear server, client and dropbearkey", () => {
    for (const p of [PEERS.dropbear, PEERS.dbclient]) {
      const r = spawnSync(p, ["-V"], { encoding: "utf8" });
      expect(r.stderr).toMatch(/^Dropbear v20\d\d\.\d+/);
    }
    const k = spawnSync(PEERS.dropbearkey, ["-h"], { encoding: "utf8" });
    expect(k.stderr).toMatch(/-t type/);
  });

  itWithPeers(["sshpass"], "sshpass", () => {
    const r = spawnSync(PEERS.sshpass, ["-V"], { encoding: "utf8" });
    expect(r.stdout).toMatch(/sshpass/);
  });

  itWithPeers(["plink", "pscp", "psftp", "puttygen"], "PuTTY's plink, pscp, psftp and puttygen 0.7x or later", () => {
    const r = spawnSync(PEERS.plink, ["-V"], { encoding: "utf8" });
    expect(r.stdout).toMatch(/plink: Release 0\.(7[6-9]|[89]\d)/);
  });
});
