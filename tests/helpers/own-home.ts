// Vitest setup file: each test file gets a HOME of its own, which the programs it starts inherit.
// Our dbclient and Dropbear's write `[127.0.0.1]:<port>` lines to ~/.ssh/known_hosts under `-y`;
// with one shared HOME those lines piled up across the suite, and a later server that happened to
// get an earlier one's random port with another host key was rightly refused as a mismatch.
// It is a private scratch directory, not one in /tmp: privateScratch() builds beneath HOME, and
// Dropbear's permission walk refuses world-writable parents.
import { afterAll } from "vitest";
import { privateScratch } from "./private-scratch.js";

const home = privateScratch("home-");
const saved = process.env.HOME;
process.env.HOME = home.dir;

afterAll(() => {
  if (saved === undefined) delete process.env.HOME;
  else process.env.HOME = saved;
  home.cleanup();
});
