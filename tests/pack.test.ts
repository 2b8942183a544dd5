// `npm run pack` makes one tarball that installs as a tool: `npm install -g` of it puts the four
// programs on PATH, self-contained (bundled JS plus declared dependencies), on a machine that has
// nothing but Node. Installing pulls the dependencies from the registry (or npm's cache).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, terminate, waitPort } from "./helpers/servers.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const PROGRAMS = ["dropbear", "dbclient", "dropbearkey", "dropbearconvert"];
/** The library entry (esbuild's bundle) and tsc's declarations beside it. */
const LIBRARY = readdirSync(join(root, "apps/dropbear-ts/src"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.replace(/\.ts$/, ".d.ts"))
  .concat("index.js");
const pkg = JSON.parse(readFileSync(join(root, "apps/dropbear-ts/package.json"), "utf8"));
let tarball = "";
let prefix = "";

beforeAll(() => {
  const out = execFileSync("npm", ["run", "--silent", "pack"], { cwd: root, encoding: "utf8", timeout: 240_000 });
  tarball = join(root, out.trim().split("\n").at(-1)!);
  prefix = mkdtempSync(join(tmpdir(), "dropbear-ts-pack-"));
  // The README's own install line, run as a user types it (sh expands its glob, from the
  // clone's root), with a prefix of ours in place of the system one it names. Only Node and
  // npm's own settings: no PATH entries into the repo.
  const install = readmeInstall();
  execFileSync("/bin/sh", ["-c", `${install.command.replace(`--prefix ${install.prefix}`, '--prefix "$1"')} --no-audit --no-fund --prefer-offline`, "sh", prefix], {
    cwd: root,
    encoding: "utf8",
    timeout: 240_000,
    stdio: ["ignore", "pipe", "pipe"],
  });
}, 300_000);

/** The README's `sudo npm install -g --prefix <dir> <tarball>` line: the command after sudo, and its prefix. */
function readmeInstall(): { command: string; prefix: string } {
  const m = /^sudo (npm install -g --prefix (\S+) \S+)/m.exec(readFileSync(join(root, "README.md"), "utf8"));
  if (m === null) throw new Error("the README has no `sudo npm install -g --prefix <dir> <tarball>` line");
  return { command: m[1]!, prefix: m[2]! };
}

afterAll(() => {
  if (prefix) rmSync(prefix, { recursive: true, force: true });
});

describe("npm run pack", () => {
  it("writes exactly one tarball, pack/dropbear-ts-<version>.tgz", () => {
    expect(readdirSync(join(root, "pack")).filter((f) => f.endsWith(".tgz"))).toEqual([`dropbear-ts-${pkg.version}.tgz`]);
    expect(tarball).toBe(join(root, "pack", `dropbear-ts-${pkg.version}.tgz`));
  });

  it("holds the four programs (command, bundle) and their launcher, the library (bundle and declarations), the licence, the README and package.json, nothing else", () => {
    const files = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" }).trim().split("\n").sort();
    expect(files).toEqual(
      [
        "package/LICENSE",
        "package/README.md",
        "package/package.json",
        ...PROGRAMS.flatMap((p) => [`package/dist/${p}.cjs`, `package/dist/${p}.bundle.cjs`]),
        "package/dist/launch.cjs",
        ...LIBRARY.map((f) => `package/dist/${f}`),
      ].sort(),
    );
  });

  it("declares what npm needs to refuse a wrong machine, and no workspace package", () => {
    // The Node versions whose require() loads an ES module without a flag (the library is one):
    // 20.19 and later in 20.x, and 22.12 and later. Node 21 and 22.0-22.11 throw ERR_REQUIRE_ESM.
    expect(pkg.engines).toEqual({ node: "^20.19.0 || >=22.12.0" });
    expect(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).engines).toEqual(pkg.engines);
    expect(pkg.os).toEqual(["linux"]);
    expect(pkg.libc).toEqual(["glibc"]);
    expect(pkg.license).toBe("MIT");
    expect(pkg.publishConfig).toEqual({ access: "public" });
    expect(Object.keys(pkg.dependencies).filter((d) => d.startsWith("@dropbear-ts/"))).toEqual([]);
    expect(Object.keys(pkg.bin).sort()).toEqual([...PROGRAMS].sort());
    expect(pkg.exports).toEqual({ ".": { types: "./dist/index.d.ts", default: "./dist/index.js" }, "./package.json": "./package.json" });
  });
});

describe("npm install -g of the tarball", () => {
  const bin = (p: string) => join(prefix, "bin", p);
  const run = (p: string, args: string[], cwd = prefix) =>
    spawnSync(bin(p), args, { cwd, encoding: "utf8", timeout: 60_000, env: { PATH: `${join(prefix, "bin")}:${process.env.PATH}`, HOME: prefix } });

  it("puts the four programs on PATH", () => {
    for (const p of PROGRAMS) expect(existsSync(bin(p)), p).toBe(true);
  });

  it("the README installs under /usr/local, where the systemd unit runs dropbear from, not where Debian's dropbear-bin is", () => {
    // NodeSource's Node (Debian 12's own is too old) gives npm the prefix /usr, whose bin holds
    // dropbear-bin's dbclient, dropbearkey and dropbearconvert: npm refuses to replace them
    // ("File exists: /usr/bin/dbclient", seen in session 62), so the README names /usr/local,
    // which also comes before /usr/sbin and /usr/bin on the default PATH.
    expect(readmeInstall().prefix).toBe("/usr/local");
    const execStart = /^ExecStart=(\S+)/m.exec(readFileSync(join(root, "docs/dropbear-ts.service"), "utf8"))?.[1];
    expect(execStart).toBe(`${readmeInstall().prefix}/bin/dropbear`);
  });

  it("bundles the workspace code: nothing of the repo is imported", () => {
    for (const p of PROGRAMS) {
      const code = readFileSync(join(prefix, "lib/node_modules/dropbear-ts/dist", `${p}.bundle.cjs`), "utf8");
      expect(code).not.toMatch(/(from\s+|require\()["']@dropbear-ts\//);
      expect(code).not.toContain(root);
    }
  });

  it("dropbearkey -t ed25519 -f k writes a key", () => {
    const r = run("dropbearkey", ["-t", "ed25519", "-f", "k"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ssh-ed25519 AAAA/m);
    expect(statSync(join(prefix, "k")).size).toBeGreaterThan(0);
  });

  it("runs the programs with V8's code cache: the installer's run writes it beside the bundle, later runs use it", () => {
    const dist = join(prefix, "lib/node_modules/dropbear-ts/dist");
    const caches = () => readdirSync(dist).filter((f) => f.startsWith("dropbearkey.bundle.cjs.") && f.endsWith(".v8cache"));
    // The tests run as the owner of the install (root in CI), as `sudo npm install -g` leaves it.
    expect(caches()).toHaveLength(1);
    const before = statSync(join(dist, caches()[0]!)).mtimeMs;
    const r = run("dropbearkey", ["-y", "-f", "k"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ssh-ed25519 AAAA/m);
    expect(caches()).toHaveLength(1);
    expect(statSync(join(dist, caches()[0]!)).mtimeMs).toBe(before);
  });

  it("dropbearconvert reads that key back (koffi-free path) and dbclient/dropbear name dropbear-ts in -V", () => {
    const c = run("dropbearconvert", ["dropbear", "openssh", "k", "k.openssh"]);
    expect(c.status, c.stderr).toBe(0);
    expect(readFileSync(join(prefix, "k.openssh"), "utf8")).toContain("BEGIN OPENSSH PRIVATE KEY");
    for (const p of ["dbclient", "dropbear"]) {
      const r = run(p, ["-V"]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe(`Dropbear v2026.94 (dropbear-ts ${pkg.version})\n`);
    }
  });

  it("dropbear and dbclient agree on mlkem768x25519-sha256 (its WebAssembly inside the bundles)", async () => {
    const kg = run("dropbearkey", ["-t", "ed25519", "-f", "mlkem-hk"]);
    expect(kg.status, kg.stderr).toBe(0);
    const port = await freePort();
    const srv = spawn(bin("dropbear"), ["-F", "-E", "-p", `127.0.0.1:${port}`, "-r", join(prefix, "mlkem-hk")], { cwd: prefix, stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    srv.stderr.on("data", (d: Buffer) => (log += d));
    try {
      await waitPort(port, srv, () => log);
      const c = spawnSync(bin("dbclient"), ["-vvv", "-y", "-o", "BatchMode=yes", "-o", "KexAlgorithms=mlkem768x25519-sha256", "-p", String(port), "nosuchuser-pack@127.0.0.1", "true"], {
        cwd: prefix,
        encoding: "utf8",
        timeout: 60_000,
        env: { PATH: `${join(prefix, "bin")}:${process.env.PATH}`, HOME: prefix },
      });
      expect(c.stderr).toContain("kex algo mlkem768x25519-sha256");
      // Past the key exchange, into authentication.
      expect(c.stderr).toMatch(/No auth methods could be used/);
    } finally {
      await terminate(srv);
    }
  }, 90_000);

  it("imports the library by name from the installed package, types included, and runs a call", () => {
    const lib = join(prefix, "lib");
    for (const f of LIBRARY.filter((f) => f.endsWith(".d.ts"))) {
      // Declarations a user's TypeScript can read without our workspace packages.
      expect(readFileSync(join(lib, "node_modules/dropbear-ts/dist", f), "utf8")).not.toContain("@dropbear-ts/");
    }
    // Resolved as a user's module beside node_modules would resolve it; port 1 on loopback is closed.
    writeFileSync(
      join(lib, "try.mjs"),
      'import { connect, SshError } from "dropbear-ts";\n' +
        'try { await connect({ host: "127.0.0.1", port: 1, username: "nobody", hostKey: false }); console.log("connected?"); }\n' +
        'catch (e) { console.log(e instanceof SshError, e.code, e.message); }\n',
    );
    const r = spawnSync(process.execPath, [join(lib, "try.mjs")], { cwd: prefix, encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH, HOME: prefix } });
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^true ECONNECT Connect failed: .*(refused|ECONNREFUSED)/i);
    expect(r.status).toBe(0);
    // And from CommonJS: require() of the ES module, which the Node versions of `engines` do without a flag.
    // package.json by name too, as tools read it.
    writeFileSync(
      join(lib, "try.cjs"),
      'const { connect, createServer } = require("dropbear-ts");\nconsole.log(typeof connect, typeof createServer, require("dropbear-ts/package.json").name);\n',
    );
    const c = spawnSync(process.execPath, [join(lib, "try.cjs")], { cwd: prefix, encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH, HOME: prefix } });
    expect(c.stderr).toBe("");
    expect(c.stdout).toBe("function function dropbear-ts\n");
  });

  it("type-checks a user's TypeScript against the installed declarations, with no `types` listed and an ES2021 lib", () => {
    const lib = join(prefix, "lib");
    writeFileSync(
      join(lib, "try-types.ts"),
      [
        'import { Client, SshError, connect, createServer, type ExitInfo, type SshErrorCode } from "dropbear-ts";',
        "export async function run(): Promise<ExitInfo> {",
        '  const c: Client = await connect({ host: "h", username: "u", privateKeyPath: "k", hostKey: (_k, fp) => fp.startsWith("SHA256:"), hostKeyAlgorithms: ["rsa-sha2-256"] });',
        '  c.on("close", (e) => void e?.message);',
        "  // The events' errors carry the code, a closed set.",
        '  c.on("error", (e) => { const code: SshErrorCode = e.code; void code; });',
        "  // The error underneath, which ES2021's Error does not declare.",
        '  c.on("close", (e) => void e?.cause);',
        "  // @ts-expect-error: not a code",
        '  const bad: SshErrorCode = "ENOPE";',
        "  void bad;",
        '  const r = c.exec("true", { pty: { cols: 80 }, env: { A: "1" } });',
        "  r.stdin.end();",
        "  return r.exit;",
        "}",
        "// @ts-expect-error: username is required",
        'void connect({ host: "h" });',
        "// @ts-expect-error: only connect() makes a Client",
        "void new Client();",
        "// method narrows the request, destructured too (docs/library.md's server example)",
        'createServer({ hostKeys: ["k"], authenticate: ({ username, method, publicKey }) => method === "publickey" && username === "u" && publicKey.blob.length > 0 });',
        'createServer({ hostKeys: ["k"], authenticate: (ctx) => ctx.method === "password" && ctx.password.length > 0 });',
        'export const e = new SshError("m", "ECLOSED", { cause: 1 });',
        "",
      ].join("\n"),
    );
    // No `types` listed (TypeScript 6's default is []) and an ES2021 lib (@tsconfig/node16's):
    // the declarations load @types/node themselves and need nothing of ES2022's lib.
    writeFileSync(
      join(lib, "tsconfig.try.json"),
      JSON.stringify({
        compilerOptions: { strict: true, skipLibCheck: false, noEmit: true, module: "nodenext", moduleResolution: "nodenext", target: "es2021", lib: ["es2021"], types: [], typeRoots: [join(root, "node_modules/@types")] },
        files: ["try-types.ts"],
      }),
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.try.json"], { cwd: lib, encoding: "utf8", timeout: 120_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 150_000);

  it("serves from the installed package: createServer, then the library's client runs a command through it", () => {
    const lib = join(prefix, "lib");
    // A host key from the installed dropbearkey (Dropbear's format), given as key material.
    const kg = run("dropbearkey", ["-t", "ed25519", "-f", "libhostkey"]);
    expect(kg.status, kg.stderr).toBe(0);
    const hostKey = join(prefix, "libhostkey");
    writeFileSync(
      join(lib, "serve.mjs"),
      [
        'import { readFileSync } from "node:fs";',
        'import { connect, createServer } from "dropbear-ts";',
        "const server = createServer({",
        "  hostKeys: [readFileSync(process.argv[2])],",
        '  authenticate: ({ method }) => method === "none",',
        "  onSession: { exec: (s) => { s.stdout.write(`served ${s.command} for ${s.username}`); s.exit(6); } },",
        "});",
        'const { port } = await server.listen(0, "127.0.0.1");',
        'const c = await connect({ host: "127.0.0.1", port, username: "pkg", hostKey: false });',
        'const r = c.exec("it");',
        'let out = "";',
        "r.stdout.on(\"data\", (d) => (out += d));",
        "const exit = await r.exit;",
        "await c.end();",
        "await server.close();",
        "console.log(out, JSON.stringify(exit));",
      ].join("\n"),
    );
    const r = spawnSync(process.execPath, [join(lib, "serve.mjs"), hostKey], { cwd: prefix, encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH, HOME: prefix } });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe('served it for pkg {"code":6}\n');
    expect(r.status).toBe(0);
  });

  it("type-checks a user's server in TypeScript against the installed declarations", () => {
    const lib = join(prefix, "lib");
    writeFileSync(
      join(lib, "try-server-types.ts"),
      [
        'import { createServer, runShellCommand, Server as ServerClass, type Server, type ServerSession } from "dropbear-ts";',
        "export async function serve(): Promise<Server> {",
        "  const s = createServer({",
        '    hostKeys: ["/etc/dropbear/dropbear_ed25519_host_key", Buffer.from("")],',
        '    authenticate: async (ctx) => ctx.method === "publickey" && ctx.publicKey !== undefined && ctx.publicKey.fingerprint.startsWith("SHA256:"),',
        "    onSession: { exec: runShellCommand, shell: (x: ServerSession) => x.exit(x.pty === null ? 1 : 0) },",
        '    onDirectTcpip: (req) => (req.port === 80 ? { host: "127.0.0.1", port: 8080 } : false),',
        '    onTcpipForward: (req) => req.address === "127.0.0.1",',
        "  });",
        "  const { port } = await s.listen(0);",
        "  void port.toFixed();",
        "  return s;",
        "}",
        "// @ts-expect-error: authenticate is required",
        'createServer({ hostKeys: ["k"] });',
        "// The class's constructor takes createServer's options, as at run time.",
        'void new ServerClass({ hostKeys: ["k"], authenticate: () => false });',
        "// @ts-expect-error: not without them",
        "void new ServerClass();",
        "",
      ].join("\n"),
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    const args = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022"];
    const r = spawnSync(process.execPath, [tsc, ...args, "--typeRoots", join(root, "node_modules/@types"), "--types", "node", "try-server-types.ts"], {
      cwd: lib,
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  }, 150_000);

  it("loads koffi's native module from the installed dependencies (libc through koffi)", () => {
    // dbclient resolves the local user through getpwuid (koffi) before it connects; a closed
    // loopback port then makes it exit with Dropbear's connect error, not a module error.
    const r = run("dbclient", ["-y", "-p", "1", "127.0.0.1", "true"]);
    expect(r.stderr).not.toMatch(/Cannot find (module|package)|ERR_MODULE_NOT_FOUND|koffi/i);
    expect(r.stderr).toMatch(/Connection refused|connect/i);
  });
});
