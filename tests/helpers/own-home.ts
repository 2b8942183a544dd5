// Vitest setup file: each test file gets a HOME of its own, which the programs it starts inherit.
// Our dbclient and Dropbear's write `[127.0.0.1]:<port>` lines to ~/.ssh/known_hosts under `-y`;
// with one shared HOME those lines piled up across the suite, and a later server that happened to
// get an earlier one's random port with another host key was rightly refused as a mismatch.
// It sits under the account's real home, not /tmp, because privateScratch() builds beneath it and
// Dropbear's permission walk refuses world-writable parents.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const base = join(homedir(), ".cache", "dropbear-ts-tests");
mkdirSync(base, { recursive: true, mode: 0o700 });
const home = mkdtempSync(join(base, "home-"));
const saved = process.env.HOME;
process.env.HOME = home;

afterAll(() => {
  if (saved === undefined) delete process.env.HOME;
  else process.env.HOME = saved;
  rmSync(home, { recursive: true, force: true });
});
