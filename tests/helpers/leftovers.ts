// Vitest global setup: once every file has run, no process the suite started may still be
// running. A test that leaves a daemon, a connection process or a peer behind has a bug (its
// clean-up), and so has a program of ours that does not end when it should (a connection process
// whose daemon had gone once stayed for minutes, stuck in Node's exit). What is left after a
// grace period is named, then killed, and the run fails.
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The repository: a process whose command line names a file under it is one the suite started. */
const ROOT = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
/** Where the suite's own files live; the runner's (node_modules) are not counted. */
const MARKS = ["apps", "tests", "tools", "packages", "examples", "bench"].map((d) => `${ROOT}/${d}/`);
/** How long the processes may take to go once the last file is done (our programs bound their own exit at 10 s). */
const GRACE_MS = 15_000;

/**
 * Set here, before the workers start, so that the processes this run starts inherit it (those
 * given an environment of their own are not seen): another run's (a bench, a second vitest in
 * the same checkout) are not this run's to judge.
 */
const RUN_ENV = "DBTS_SUITE_RUN";

/** This run's processes running now: pid and command line. */
function suiteProcesses(run: string): Map<number, string> {
  const found = new Map<number, string>();
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let args: string[];
    let env: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "");
      if (!args.some((a) => MARKS.some((m) => a.startsWith(m)))) continue;
      env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    } catch {
      continue;
    }
    if (env.includes(`${RUN_ENV}=${run}`)) found.set(pid, args.join(" "));
  }
  return found;
}

export default function setup(): () => Promise<void> {
  const run = `${process.pid}-${Date.now()}`;
  process.env[RUN_ENV] = run;
  const left = (): Map<number, string> => suiteProcesses(run);
  return async () => {
    let now = left();
    for (const end = Date.now() + GRACE_MS; now.size > 0 && Date.now() < end; now = left()) {
      await new Promise((r) => setTimeout(r, 250));
    }
    if (now.size === 0) return;
    for (const pid of now.keys()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    // (vitest reports an error thrown here but still exits 0: the status is set as well.)
    process.exitCode = 1;
    throw new Error(`${now.size} process(es) the suite started were still running ${GRACE_MS / 1000} s after its last file (killed now):\n${[...now].map(([pid, args]) => `  ${pid} ${args}`).join("\n")}`);
  };
}
