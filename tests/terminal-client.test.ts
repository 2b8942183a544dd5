import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect } from "vitest";
import { PEERS, itWithPeers } from "./helpers/peers.js";
import { OURS, scratch, useOurDropbear } from "./helpers/servers.js";

// Our dbclient at its prompts on a real terminal: script(1) gives it a pty whose input we type
// through script's stdin. The server is our dropbear; no account is needed, as both prompts
// come before any login succeeds (Dropbear asks a password of an unknown user too).

const srv = useOurDropbear("dbts-termcli-");

/**
 * In a terminal of script(1)'s: save the terminal's settings, run our dbclient (its pid in a
 * file) with `args`, then say its exit status and save the settings again. Resolves once the
 * output shows `prompt`.
 */
async function atPrompt(dir: string, args: string[], prompt: RegExp): Promise<{ pid: number; type: (s: string) => void; status: () => Promise<string> }> {
  const pidfile = join(dir, "pid");
  // The shell traps SIGINT (caught, so its child gets it back at its default) to outlive a ^C.
  const inner = `trap : INT; stty -g > ${dir}/before; sh -c 'echo $$ > ${pidfile}; exec "$@"' sh ${process.execPath} ${OURS.dbclient} ${args.join(" ")}; echo "rc=$?"; stty -g > ${dir}/after`;
  const child = spawn(PEERS.script, ["-qec", inner, "/dev/null"], { env: { ...process.env, HOME: dir }, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString("latin1")));
  const done = new Promise<string>((resolve) => child.on("close", () => resolve(out)));
  for (const end = Date.now() + 15_000; !prompt.test(out); ) {
    if (Date.now() > end) {
      child.kill("SIGKILL");
      throw new Error(`no prompt ${prompt} in: ${JSON.stringify(out)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // The prompt is out just before the read starts.
  await new Promise((r) => setTimeout(r, 200));
  const pid = Number(readFileSync(pidfile, "utf8").trim());
  /** The exit status the inner shell saw, within a few seconds; script is ended after that. */
  const status = async (): Promise<string> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`still waiting after 5 s: ${JSON.stringify(out)}`), 5000)));
    const seen = await Promise.race([done.then((o) => /rc=(\d+)/.exec(o)?.[1] ?? `no status in ${JSON.stringify(o)}`), late]);
    clearTimeout(timer);
    child.kill("SIGKILL");
    if (pid > 0) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone, as it should be
      }
    }
    return seen;
  };
  return { pid, type: (s) => child.stdin.write(s), status };
}

describe("our dbclient at a prompt on its terminal", () => {
  itWithPeers(["script"], "^C typed at the unknown host key question ends it at once, by SIGINT as C's", async () => {
    const { dir, cleanup } = scratch("dbts-termcli-hk-");
    try {
      // No -y and an empty HOME: the host is unknown.
      const p = await atPrompt(dir, ["-p", String(srv.server.port), "dbts-nouser@127.0.0.1", "true"], /\(y\/n\) $/);
      // Until now ^C waited for Enter: the read went on under Node's signal handler.
      p.type("\x03");
      expect(await p.status()).toBe("130");
      expect(readFileSync(join(dir, "after"), "utf8")).toBe(readFileSync(join(dir, "before"), "utf8"));
    } finally {
      cleanup();
    }
  }, 20_000);

  itWithPeers(["script"], "SIGTERM at the password prompt ends it at once, by the signal, with echo back on (C leaves it off)", async () => {
    const { dir, cleanup } = scratch("dbts-termcli-pw-");
    try {
      const p = await atPrompt(dir, ["-y", "-y", "-p", String(srv.server.port), "dbts-nouser@127.0.0.1", "true"], /password: $/);
      process.kill(p.pid, "SIGTERM");
      expect(await p.status()).toBe("143");
      expect(readFileSync(join(dir, "after"), "utf8")).toBe(readFileSync(join(dir, "before"), "utf8"));
    } finally {
      cleanup();
    }
  }, 20_000);
});
