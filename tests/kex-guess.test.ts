import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OURS, freePort, ourKeygen, run, scratch, terminate, waitPort, type Server } from "./helpers/servers.js";
import { clearAnswers, kexinit, packet, x25519Share } from "./helpers/wire.js";

// first_kex_packet_follows where the start of a side's algorithm list is not offered: under
// `node --jitless` the KEMs that head our kex list are not usable (no WebAssembly). A guess is
// right when the first names of the lists *as sent* agree, so the unusable entries before them
// must not count, on either side (as Dropbear builds without the KEMs have no such entries).

const ROOT = join(import.meta.dirname, "..");
const work = scratch("dbts-kexguess-");
let server: Server | null = null;

beforeAll(async () => {
  const key = ourKeygen(join(work.dir, "hk_ed25519"), "ed25519");
  const port = await freePort();
  const child = spawn(process.execPath, ["--jitless", OURS.dropbear, "-F", "-E", "-p", `127.0.0.1:${port}`, "-r", key], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  server = { port, child, log: () => out, stop: () => terminate(child) };
  await waitPort(port, child, server.log);
}, 30_000);

afterAll(async () => {
  await server?.stop();
  work.cleanup();
});

/** The server's clear packet types after our ident and `frames`, up to `until` (at most 5 s). */
function answered(frames: Buffer[], until: number): Promise<number[]> {
  return clearAnswers(server!.port, "SSH-2.0-guesser_1.0", frames, until, 5_000);
}

describe("a guessed first kex packet against a server whose list starts with methods it does not offer (--jitless)", () => {
  it("a right guess (the server's first offered kex and host key) is answered, not ignored", async () => {
    // No kexguess2: both first names must match, as a guessing non-Dropbear client sends it.
    const ki = kexinit("curve25519-sha256", false);
    ki[ki.length - 5] = 1; // first_kex_packet_follows
    // KEXINIT, then KEXDH_REPLY (31) to the guessed KEXDH_INIT.
    expect(await answered([packet(ki), x25519Share()], 31)).toEqual([20, 31]);
  });

  it("the library's client under --jitless with kexGuess: true completes the exchange", async () => {
    const script = `
      import { connect } from "dropbear-ts";
      try {
        await connect({ host: "127.0.0.1", port: ${server!.port}, username: "nobody", password: "not-this", hostKey: false, kexGuess: true, readyTimeout: 10000 });
        console.log("connected");
      } catch (e) { console.log(e.code, e.message); }`;
    const r = await run(process.execPath, ["--jitless", "--input-type=module", "-e", script], { cwd: ROOT, timeoutMs: 30_000 });
    // Through the key exchange to authentication, which fails; not "Bad hostkey signature" (the
    // client counted its unusable KEMs, took its right guess for a wrong one and sent a second
    // KEXDH_INIT, whose key the server's reply was not for).
    expect(r.stdout).toMatch(/^EAUTH /);
  });
});
