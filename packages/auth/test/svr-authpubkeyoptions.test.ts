import { describe, expect, it } from "vitest";
import { buf_new, buf_putbytes } from "@dropbear-ts/buffer";
import { PUBKEY_OPTIONS_ANY_PORT, type PubKeyOptions } from "@dropbear-ts/core";
import { setLogHandler } from "@dropbear-ts/dbutil";
import {
  svr_parse_pubkey_options,
  svr_pubkey_allows_agentfwd,
  svr_pubkey_allows_local_tcpfwd,
  svr_pubkey_allows_pty,
  svr_pubkey_allows_remote_tcpfwd,
  svr_pubkey_allows_tcpfwd,
  svr_pubkey_allows_x11fwd,
  svr_pubkey_has_forced_command,
  svr_pubkey_set_forced_command,
} from "../src/index.js";
import { newSvrSession } from "./harness.js";

function parse(text: string): { opts: PubKeyOptions | null; logs: string[] } {
  const logs: string[] = [];
  const prev = setLogHandler((_p, m) => logs.push(m));
  try {
    const bytes = Buffer.from(text, "utf8");
    const b = buf_new(bytes.length);
    buf_putbytes(b, bytes);
    return { opts: svr_parse_pubkey_options(b, 7, "/home/u/.ssh/authorized_keys"), logs };
  } finally {
    setLogHandler(prev);
  }
}

function ok(text: string): PubKeyOptions {
  const { opts } = parse(text);
  expect(opts, text).not.toBeNull();
  return opts!;
}

function bad(text: string, ...extraLogs: string[]): void {
  const { opts, logs } = parse(text);
  expect(opts, text).toBeNull();
  expect(logs).toEqual([...extraLogs, "Bad public key options at /home/u/.ssh/authorized_keys:7"]);
}

const hosts = (o: PubKeyOptions) => Array.from(o.permit_open_destinations ?? [], (e) => [e.host, e.port]);
const ports = (o: PubKeyOptions) => Array.from(o.permit_listens ?? [], (e) => e.port);

describe("svr_parse_pubkey_options", () => {
  it("no options at all allows everything", () => {
    const o = svr_parse_pubkey_options(null, 1, "f")!;
    expect(o.no_port_forwarding_flag || o.no_agent_forwarding_flag || o.no_pty_flag || o.no_x11_forwarding_flag).toBe(false);
    expect(o.forced_command).toBeNull();
  });

  it("command= keeps its bytes as they are (one latin1 character each), UTF-8 or not", () => {
    for (const cmd of [Buffer.from("echo é"), Buffer.from([0x65, 0x63, 0x68, 0x6f, 0x20, 0xff, 0xfe])]) {
      const bytes = Buffer.concat([Buffer.from('command="'), cmd, Buffer.from('"')]);
      const b = buf_new(bytes.length);
      buf_putbytes(b, bytes);
      const o = svr_parse_pubkey_options(b, 1, "f")!;
      expect(Buffer.from(o.forced_command!, "latin1")).toEqual(cmd);
    }
  });

  it("sets each flag, with Dropbear's log lines", () => {
    expect(parse("no-port-forwarding").logs).toEqual(["Port forwarding disabled."]);
    expect(ok("no-port-forwarding").no_port_forwarding_flag).toBe(true);
    expect(parse("no-agent-forwarding").logs).toEqual(["Agent forwarding disabled."]);
    expect(ok("no-agent-forwarding").no_agent_forwarding_flag).toBe(true);
    expect(parse("no-pty").logs).toEqual(["Pty allocation disabled."]);
    expect(ok("no-pty").no_pty_flag).toBe(true);
    // X11 is not built (as in Dropbear's default): accepted, nothing to turn off.
    const x = parse("no-X11-forwarding");
    expect(x.opts!.no_x11_forwarding_flag).toBe(false);
    expect(x.logs).toEqual([]);
  });

  it("restrict turns off forwarding, agent and pty", () => {
    const { opts, logs } = parse("restrict");
    expect(logs).toEqual(["Restrict option set"]);
    expect(opts!.no_port_forwarding_flag && opts!.no_agent_forwarding_flag && opts!.no_pty_flag).toBe(true);
  });

  it("names are case-insensitive and comma separated", () => {
    const o = ok("NO-PTY,No-Agent-Forwarding,no-port-forwarding");
    expect(o.no_pty_flag && o.no_agent_forwarding_flag && o.no_port_forwarding_flag).toBe(true);
    // A stray comma before or after an option is skipped, as Dropbear's loop does.
    expect(ok(",no-pty,").no_pty_flag).toBe(true);
  });

  it("command= keeps the text between the quotes, escapes included", () => {
    expect(ok('command="echo hi there"').forced_command).toBe("echo hi there");
    expect(ok('command="echo \\"quoted\\"",no-pty').forced_command).toBe('echo \\"quoted\\"');
    expect(ok('command=""').forced_command).toBe("");
    bad('command="one",command="two"');
    bad('command="never closed', "Badly formatted command= authorized_keys option");
  });

  it("permitopen= takes host:port, [v6]:port and host:*", () => {
    expect(hosts(ok('permitopen="localhost:80",permitopen="[::1]:22",permitopen="db:*"'))).toEqual([
      ["localhost", 80],
      ["::1", 22],
      ["db", PUBKEY_OPTIONS_ANY_PORT],
    ]);
    const msg = "Badly formatted permitopen= authorized_keys option";
    bad('permitopen="localhost:65536"', msg);
    bad('permitopen="localhost"', msg);
    bad('permitopen=":80"', msg);
    bad('permitopen="localhost:http"', msg);
    bad('permitopen="localhost:80', msg);
  });

  it("permitlisten= takes a bare port only", () => {
    expect(ports(ok('permitlisten="8080",permitlisten="0"'))).toEqual([8080, 0]);
    const msg = "Badly formatted permitlisten= authorized_keys option";
    bad('permitlisten="localhost:8080"', msg);
    bad('permitlisten="*"', msg);
    bad('permitlisten="70000"', msg);
    bad('permitlisten="8080', msg);
  });

  it("sk options", () => {
    expect(parse("no-touch-required").logs).toEqual(["No user presence check required for U2F/FIDO key."]);
    expect(ok("no-touch-required").no_touch_required_flag).toBe(true);
    expect(parse("verify-required").logs).toEqual(["User verification required for U2F/FIDO key."]);
    expect(ok("verify-required").verify_required_flag).toBe(true);
  });

  it("any other option rejects the line", () => {
    bad('from="10.0.0.0/8"');
    bad('environment="A=b"');
    bad('expiry-time="20300101"');
    bad("cert-authority");
    // A known option glued to more text, or followed by anything but a comma.
    bad("no-ptyx", "Pty allocation disabled.");
    bad("no-pty no-agent-forwarding", "Pty allocation disabled.");
    bad("no-pty,bogus", "Pty allocation disabled.");
  });
});

describe("svr_pubkey_allows_*", () => {
  it("allow everything without pubkey options (password logins)", () => {
    const ses = newSvrSession();
    expect(svr_pubkey_allows_agentfwd(ses)).toBe(true);
    expect(svr_pubkey_allows_tcpfwd(ses)).toBe(true);
    expect(svr_pubkey_allows_x11fwd(ses)).toBe(true);
    expect(svr_pubkey_allows_pty(ses)).toBe(true);
    expect(svr_pubkey_has_forced_command(ses)).toBe(false);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("anywhere"), 1)).toBe(true);
    expect(svr_pubkey_allows_remote_tcpfwd(ses, null, 1)).toBe(true);
  });

  it("follow the matched line's options", () => {
    const ses = newSvrSession();
    ses.authstate.pubkey_options = ok('restrict,permitopen="db:5432",permitopen="web:*",permitlisten="9000",command="ls"');
    expect(svr_pubkey_allows_agentfwd(ses)).toBe(false);
    expect(svr_pubkey_allows_tcpfwd(ses)).toBe(false);
    expect(svr_pubkey_allows_pty(ses)).toBe(false);
    expect(svr_pubkey_has_forced_command(ses)).toBe(true);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("db"), 5432)).toBe(true);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("db"), 5433)).toBe(false);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("DB"), 5432)).toBe(false);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("web"), 1)).toBe(true);
    expect(svr_pubkey_allows_remote_tcpfwd(ses, "any", 9000)).toBe(true);
    expect(svr_pubkey_allows_remote_tcpfwd(ses, "any", 9001)).toBe(false);
  });

  it("compares a permitopen= host with the requested one byte for byte, UTF-8 or not (as C's strcmp)", () => {
    // Before, both were decoded as text: a host that is not UTF-8 matched no request for it,
    // and any two such hosts (0xfe, 0xff) read alike.
    const line = Buffer.concat([Buffer.from('permitopen="h'), Buffer.from([0xff]), Buffer.from(':22",permitopen="caf\u00e9:*"')]);
    const b = buf_new(line.length);
    buf_putbytes(b, line);
    const ses = newSvrSession();
    ses.authstate.pubkey_options = svr_parse_pubkey_options(b, 1, "f");
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from([0x68, 0xff]), 22)).toBe(true);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from([0x68, 0xfe]), 22)).toBe(false);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("h\ufffd"), 22)).toBe(false);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("h\u00ff"), 22)).toBe(false);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("caf\u00e9"), 1)).toBe(true);
    expect(svr_pubkey_allows_local_tcpfwd(ses, Buffer.from("caf\u00e9", "latin1"), 1)).toBe(false);
  });

  it("a forced command replaces the client's, which is kept as the original", () => {
    const ses = newSvrSession();
    ses.authstate.pubkey_options = ok('command="/usr/bin/backup"');
    const withCmd = { cmd: "rm -rf /" as string | null, original_command: null as string | null };
    svr_pubkey_set_forced_command(ses, withCmd);
    expect(withCmd).toEqual({ cmd: "/usr/bin/backup", original_command: "rm -rf /" });
    const shell = { cmd: null as string | null, original_command: null as string | null };
    svr_pubkey_set_forced_command(ses, shell);
    expect(shell).toEqual({ cmd: "/usr/bin/backup", original_command: "" });
  });
});
