import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buf_getbyte, buf_getint, buf_getstring, buf_new, buf_putbytes, buf_setpos, type buffer } from "@dropbear-ts/buffer";
import {
  cli_auth_getmethods,
  cli_auth_try,
  recv_msg_userauth_failure,
  recv_msg_userauth_request,
  recv_msg_userauth_specific_60,
  recv_msg_userauth_success,
  svrAuthCheckDelayed,
  svr_authinitialise,
} from "@dropbear-ts/auth";
import { chaninitialise } from "@dropbear-ts/channel";
import { Channel, SSH_OPEN_ADMINISTRATIVELY_PROHIBITED, SSH_OPEN_CONNECT_FAILED, cli_state, type CliSession, type SvrSession, type sshsession } from "@dropbear-ts/core";
import { DropbearExit, list_new } from "@dropbear-ts/dbutil";
import { StreamFd } from "@dropbear-ts/netio";
import { SSH2_AGENTC_REQUEST_IDENTITIES, SSH2_AGENT_IDENTITIES_ANSWER, SSH_MSG_CHANNEL_REQUEST, SSH_MSG_USERAUTH_FAILURE, SSH_MSG_USERAUTH_REQUEST, SSH_MSG_USERAUTH_SPECIFIC_60, SSH_MSG_USERAUTH_SUCCESS } from "@dropbear-ts/options";
import { SIGNKEY_SOURCE_AGENT, type sign_key } from "@dropbear-ts/signkey";
import { delayOver, deliver, newCliSession, newSvrSession, pair, sleep, takePayloads, withLogs } from "../../auth/test/harness.js";
import { cliAgentOps, cli_chan_agent, cli_load_agent_keys, cli_setup_agent, connect_unix } from "../src/index.js";

// The client half of cli-agentfwd.c against a real ssh-agent started here.

const haveAgent = existsSync("/usr/bin/ssh-agent") && existsSync("/usr/bin/ssh-add");

let dir: string;
let home: string;
let sock: string;
let agent: ChildProcess | null = null;
const files: Record<string, string> = {};
const savedSock = process.env.SSH_AUTH_SOCK;

const pubOf = (f: string): string => execFileSync("ssh-keygen", ["-y", "-P", "", "-f", f], { encoding: "utf8" }).trim();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dbts-agentfwd-"));
  home = join(dir, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o755);
  chmodSync(dir, 0o755);
  if (!haveAgent) return;
  for (const [name, type] of [
    ["id_ed25519", "ed25519"],
    ["id_rsa", "rsa"],
  ] as const) {
    const f = join(dir, name);
    execFileSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", f, "-C", name]);
    files[name] = f;
  }
  sock = join(dir, "agent.sock");
  agent = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
  for (let i = 0; i < 250 && !existsSync(sock); i++) await sleep(20);
  for (const f of Object.values(files)) {
    execFileSync("ssh-add", ["-q", f], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: "ignore", timeout: 10_000 });
  }
});

afterAll(() => {
  agent?.kill();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
  if (savedSock === undefined) delete process.env.SSH_AUTH_SOCK;
  else process.env.SSH_AUTH_SOCK = savedSock;
});

/** The payloads queued since the last call, positioned after the type byte (returned first). */
function sent(ses: sshsession): { type: number; b: buffer }[] {
  return takePayloads(ses).map((p) => {
    const b = buf_new(p.length);
    buf_putbytes(b, p);
    buf_setpos(b, 0);
    const type = buf_getbyte(b);
    return { type, b };
  });
}

describe("connect_unix", () => {
  it("returns -1 for a socket that does not exist", () => {
    expect(connect_unix(join(tmpdir(), "dbts-no-such-socket"))).toBe(-1);
  });
});

describe.runIf(haveAgent)("agent keys for publickey auth", () => {
  it("lists the agent's keys, marked as agent keys", () => {
    process.env.SSH_AUTH_SOCK = sock;
    const cli = newCliSession();
    const keys = list_new<sign_key>();
    cli_load_agent_keys(cli, keys);
    const got: sign_key[] = [];
    for (let n = keys.first; n !== null; n = n.next) got.push(n.item);
    expect(got.length).toBe(2);
    expect(got.every((k) => k.source === SIGNKEY_SOURCE_AGENT)).toBe(true);
    expect(cli.cli_ses.cli_opts.agent_fd).toBeGreaterThanOrEqual(0);
    cliAgentOps.close(cli);
    expect(cli.cli_ses.cli_opts.agent_fd).toBe(-1);
  });

  it("adds nothing when SSH_AUTH_SOCK is unset or points nowhere", () => {
    for (const v of [undefined, join(dir, "nothing-here.sock")]) {
      if (v === undefined) delete process.env.SSH_AUTH_SOCK;
      else process.env.SSH_AUTH_SOCK = v;
      const cli = newCliSession();
      const keys = list_new<sign_key>();
      cli_load_agent_keys(cli, keys);
      expect(keys.first).toBeNull();
      expect(cli.cli_ses.cli_opts.agent_fd).toBe(-1);
    }
  });

  /** Drive client and server auth handlers against each other until the client is in. */
  async function authenticate(cli: CliSession, svr: SvrSession): Promise<void> {
    const svrHandlers: Record<number, (ses: SvrSession) => void> = { [SSH_MSG_USERAUTH_REQUEST]: recv_msg_userauth_request };
    const cliHandlers: Record<number, (ses: CliSession) => void> = {
      [SSH_MSG_USERAUTH_FAILURE]: recv_msg_userauth_failure,
      [SSH_MSG_USERAUTH_SUCCESS]: recv_msg_userauth_success,
      [SSH_MSG_USERAUTH_SPECIFIC_60]: recv_msg_userauth_specific_60,
    };
    const pump = <S extends sshsession>(from: sshsession, to: S, handlers: Record<number, (ses: S) => void>): void => {
      for (const p of takePayloads(from)) {
        const h = handlers[p[0]!];
        if (h !== undefined) deliver(to, p, h);
      }
    };
    await withLogs(async (logs) => {
      pair(svr, cli);
      cli_auth_getmethods(cli);
      cli.cli_ses.state = cli_state.USERAUTH_REQ_SENT;
      for (let step = 0; step < 100; step++) {
        pump(cli, svr, svrHandlers);
        await delayOver(svr);
        svrAuthCheckDelayed(svr);
        pump(svr, cli, cliHandlers);
        const state = cli.cli_ses.state as cli_state;
        if (state === cli_state.USERAUTH_SUCCESS_RCVD) return;
        if (state === cli_state.USERAUTH_FAIL_RCVD) {
          if (!cli_auth_try(cli)) throw new DropbearExit(1, "No auth methods could be used.");
          cli.cli_ses.state = cli_state.USERAUTH_REQ_SENT;
        }
      }
      throw new Error(`auth did not finish: ${logs.join(" / ")}`);
    });
  }

  it("signs through ssh-agent via the installed CliAgentOps (ed25519, rsa-sha2-256, rsa-sha2-512)", async () => {
    for (const [key, algs] of [
      [files.id_ed25519!, ["ssh-ed25519"]],
      [files.id_rsa!, ["rsa-sha2-256"]],
      [files.id_rsa!, ["rsa-sha2-512"]],
    ] as const) {
      writeFileSync(join(home, ".ssh", "authorized_keys"), pubOf(key) + "\n");
      process.env.SSH_AUTH_SOCK = sock;
      const cli = newCliSession();
      cli.cli_ses.agent = cliAgentOps;
      cli.cli_ses.cli_opts.password_authentication = false;
      cli.cli_ses.server_sig_algs = [...algs];
      const svr = newSvrSession();
      svr_authinitialise(svr);
      Object.assign(svr.authstate, { username: "root", username_sent: Buffer.from("root"), pw_name: "root", pw_uid: 0, pw_gid: 0, pw_dir: home, pw_shell: "/bin/sh", pw_passwd: "*" });
      await authenticate(cli, svr);
      expect(svr.authstate.authdone).toBe(true);
      // Auth is over: the agent connection is closed again.
      expect(cli.cli_ses.cli_opts.agent_fd).toBe(-1);
    }
  });
});

describe("cli_setup_agent", () => {
  it("asks for auth-agent-req@openssh.com without a reply when SSH_AUTH_SOCK is set, else nothing", () => {
    const cli = newCliSession();
    chaninitialise(cli, [cli_chan_agent]);
    const channel = new Channel(0, cli_chan_agent, 42, 0, 0, 0);
    delete process.env.SSH_AUTH_SOCK;
    cli_setup_agent(cli, channel);
    expect(sent(cli)).toEqual([]);
    process.env.SSH_AUTH_SOCK = "/nonexistent/agent.sock";
    cli_setup_agent(cli, channel);
    const out = sent(cli);
    expect(out.length).toBe(1);
    const { type, b } = out[0]!;
    expect(type).toBe(SSH_MSG_CHANNEL_REQUEST);
    expect(buf_getint(b)).toBe(42);
    expect(buf_getstring(b).toString()).toBe("auth-agent-req@openssh.com");
    expect(buf_getbyte(b)).toBe(0);
    expect(b.pos).toBe(b.len);
  });
});

describe("cli_chan_agent (the server opens auth-agent@openssh.com)", () => {
  const open = (agent_fwd: boolean): { ret: number; channel: Channel } => {
    const cli = newCliSession((o) => {
      o.agent_fwd = agent_fwd;
    });
    const channel = new Channel(0, cli_chan_agent, 5, 100_000, 32_768, 0);
    return { ret: cli_chan_agent.inithandler!(cli, channel), channel };
  };

  it("is refused without -A", () => {
    process.env.SSH_AUTH_SOCK = haveAgent ? sock : "/nonexistent/agent.sock";
    expect(open(false).ret).toBe(SSH_OPEN_ADMINISTRATIVELY_PROHIBITED);
  });

  it("fails to connect when the agent socket is missing", () => {
    process.env.SSH_AUTH_SOCK = join(tmpdir(), "dbts-no-such-agent.sock");
    expect(open(true).ret).toBe(SSH_OPEN_CONNECT_FAILED);
    delete process.env.SSH_AUTH_SOCK;
    expect(open(true).ret).toBe(SSH_OPEN_CONNECT_FAILED);
  });

  it.runIf(haveAgent)("connects the channel to the local agent, non-blocking, one fd both ways", async () => {
    process.env.SSH_AUTH_SOCK = sock;
    const { ret, channel } = open(true);
    expect(ret).toBe(0);
    expect(channel.bidir_fd).toBe(true);
    const fd = channel.readfd as StreamFd;
    expect(fd).toBeInstanceOf(StreamFd);
    expect(channel.writefd).toBe(fd);
    // A REQUEST_IDENTITIES through the channel's fd gets the agent's answer back.
    expect(fd.write(Buffer.from([0, 0, 0, 1, SSH2_AGENTC_REQUEST_IDENTITIES]))).toBe(5);
    let reply = Buffer.alloc(0);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      const chunk = fd.readReady() ? fd.read(65536) : null;
      if (chunk !== null) reply = Buffer.concat([reply, chunk]);
      if (reply.length >= 4 && reply.length >= 4 + reply.readUInt32BE(0)) break;
      await sleep(10);
    }
    expect(reply[4]).toBe(SSH2_AGENT_IDENTITIES_ANSWER);
    expect(reply.readUInt32BE(5)).toBe(2);
    fd.close();
  });
});
