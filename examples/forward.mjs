#!/usr/bin/env node
// dbclient's -L from code: listen on 127.0.0.1:LPORT and carry each connection through the SSH
// server to THOST:TPORT, until interrupted. The server's host key must be in ~/.ssh/known_hosts.
//
//   node examples/forward.mjs USER@HOST:PORT KEYFILE LPORT THOST:TPORT
import { connect } from "dropbear-ts";

const [target, keyfile, lport, to] = process.argv.slice(2);
const m = /^([^@]+)@(.+):(\d+)$/.exec(target ?? "");
const t = /^(.+):(\d+)$/.exec(to ?? "");
if (m === null || t === null || keyfile === undefined || !/^\d+$/.test(lport ?? "")) {
  console.error("usage: forward.mjs USER@HOST:PORT KEYFILE LPORT THOST:TPORT");
  process.exit(2);
}
const [, username, host, port] = m;

try {
  const client = await connect({ host, port: Number(port), username, privateKeyPath: keyfile });
  const bound = await client.forwardLocal({ listenHost: "127.0.0.1", listenPort: Number(lport), host: t[1], port: Number(t[2]) });
  console.log(`listening on 127.0.0.1:${bound.port}`);
  // The library installs no signal handlers: the program decides what a signal means.
  for (const sig of ["SIGINT", "SIGTERM"]) process.once(sig, () => void client.end());
  client.on("close", (error) => {
    if (error) {
      console.error(`forward.mjs: ${error.message}`);
      process.exitCode = 255;
    }
  });
} catch (e) {
  console.error(`forward.mjs: ${e.message}`);
  process.exitCode = 255;
}
