#!/usr/bin/env node
// Run one command over SSH and exit with its status, as `dbclient -i KEYFILE -p PORT USER@HOST
// COMMAND` would: the remote stdout and stderr go to ours. The server's host key must be in
// ~/.ssh/known_hosts.
//
//   node examples/exec.mjs USER@HOST:PORT KEYFILE COMMAND...
import { connect } from "dropbear-ts";

const [target, keyfile, ...command] = process.argv.slice(2);
const m = /^([^@]+)@(.+):(\d+)$/.exec(target ?? "");
if (m === null || keyfile === undefined || command.length === 0) {
  console.error("usage: exec.mjs USER@HOST:PORT KEYFILE COMMAND...");
  process.exit(2);
}
const [, username, host, port] = m;

try {
  const client = await connect({ host, port: Number(port), username, privateKeyPath: keyfile });
  const cmd = client.exec(command.join(" "));
  cmd.stdin.end();
  cmd.stdout.pipe(process.stdout);
  cmd.stderr.pipe(process.stderr);
  const exit = await cmd.exit;
  await client.end();
  if ("code" in exit) {
    process.exitCode = exit.code;
  } else {
    // A signal death exits as a shell reports it: 128 + the signal's number. A signal this
    // system has no number for (sshd names one it cannot name "SIG@openssh.com") is said, and
    // exits 255, as ssh does without an exit status.
    const signo = (await import("node:os")).constants.signals[`SIG${exit.signal}`];
    if (signo === undefined) {
      console.error(`exec.mjs: killed by signal ${exit.signal}`);
    }
    process.exitCode = signo === undefined ? 255 : 128 + signo;
  }
} catch (e) {
  console.error(`exec.mjs: ${e.message}`);
  process.exitCode = 255;
}
