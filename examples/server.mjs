// An SSH server inside this Node process, needing no system accounts:
//   node examples/server.mjs PORT HOSTKEY AUTHORIZED_KEYS
// accepts the public keys listed in AUTHORIZED_KEYS (OpenSSH's "algo base64 comment" lines),
// runs exec requests with /bin/sh -c as the current user, allows direct-tcpip (ssh -L) and
// refuses anything else. Prints "listening on 127.0.0.1:PORT" when ready; SIGINT/SIGTERM stop it.
import { readFileSync } from "node:fs";
import { createServer, runShellCommand } from "dropbear-ts";

const [port, hostKey, authorizedKeys] = process.argv.slice(2);
if (authorizedKeys === undefined) {
  console.error("usage: node examples/server.mjs PORT HOSTKEY AUTHORIZED_KEYS");
  process.exit(2);
}

// "algo base64" of each key line, to compare with what a client offers.
const allowed = new Set(
  readFileSync(authorizedKeys, "utf8")
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .filter(([algo, blob]) => algo && !algo.startsWith("#") && blob)
    .map(([, blob]) => blob),
);

const server = createServer({
  hostKeys: [hostKey],
  authenticate: ({ method, publicKey }) => method === "publickey" && allowed.has(publicKey.blob.toString("base64")),
  onSession: { exec: runShellCommand },
  onDirectTcpip: () => true,
  logger: (level, message) => console.error(`[${level}] ${message}`),
});

const { address, port: bound } = await server.listen(Number(port), "127.0.0.1");
console.log(`listening on ${address}:${bound}`);

const stop = () => void server.close();
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
