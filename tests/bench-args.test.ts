// The bench scripts take their flags strictly: a mistyped flag ends the script before it starts
// anything, where it once ran the whole four-minute bench and would have rewritten docs/bench.md.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const run = (script: string, ...args: string[]) =>
  spawnSync(process.execPath, [`bench/${script}`, ...args], { cwd: root, encoding: "utf8", timeout: 20_000 });

describe("bench flags", () => {
  it("--help prints the usage and runs nothing", () => {
    const r = run("run.mjs", "--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: node bench\/run\.mjs /);
  });

  it.each([
    [["run.mjs", "--hepl"], /Unknown option '--hepl'/],
    [["run.mjs", "--rounds", "x"], /--rounds wants a positive number, not 'x'/],
    [["run.mjs", "--rounds"], /argument missing/],
    [["run.mjs", "--only", "openssh"], /--only: no implementation 'openssh'/],
    [["run.mjs", "--ciphers", "aes256"], /--ciphers: no cipher matches 'aes256'/],
    [["run.mjs", "--conc", "200,x"], /--conc wants connection counts/],
    [["run.mjs", "--conc-rounds", "3"], /--conc-rounds needs --conc-only/],
    [["run.mjs", "--base", "/nonexistent"], /--base: no checkout of ours/],
    [["daemon.mjs", "--burst", "0"], /--burst wants a positive number/],
    [["conn-cpu.mjs", "--a", "x"], /usage: node bench\/conn-cpu\.mjs/],
    [["packet.mjs", "--cipher", "gcm"], /Unknown option '--cipher'/],
    [["packet.mjs", "16k"], /payload sizes are byte counts/],
    [["crypto.mjs", "--kems"], /Unknown option '--kems'/],
  ])("%j fails before it starts", ([script, ...args], message) => {
    const r = run(script!, ...args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("a value may start with a dash (--node-args)", () => {
    // Parsed, then stopped by the bad count that follows: no run starts.
    const r = run("run.mjs", "--node-args", "--cpu-prof --cpu-prof-dir=/tmp/x", "--rounds", "0");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--rounds wants a positive number, not '0'/);
  });
});
