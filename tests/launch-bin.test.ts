// The bin launchers' code cache (tools/launch-bin.cjs): a cache is made once by the bundle's
// owner and used after; anything wrong with it (corrupt, truncated, another V8's, another
// bundle's, writable by others, someone else's) costs a plain compile, never a failed run or
// stale code. Each case runs a small bundle through the real launcher in a fresh node.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AMD_COPY_TUNABLES, LAUNCHER_HELD_CA_ENV, LAUNCHER_TUNABLES_ENV, cpuVendor } from "@dropbear-ts/dbutil";
import { waitSpare } from "./helpers/procs.js";
import { startOurDropbearWithHostKey } from "./helpers/servers.js";

const run = promisify(execFile);
const launcher = fileURLToPath(new URL("../tools/launch-bin.cjs", import.meta.url));
const asRoot = process.getuid?.() === 0;

// Nested functions, require() and a promise, as the real bundles have, inside the CommonJS
// wrapper bundle-bin.mjs writes (`wrapped` false: a bundle of an older build, without it).
const bundleSource = (word: string, wrapped = true) => (wrapped ? "(function (exports, require, module, __filename, __dirname) { " : "") + `"use strict";
const os = require("node:os");
function outer(n) {
  function inner(m) { return m * 2; }
  return inner(n) + 1;
}
Promise.resolve().then(() => require("node:path")).then((path) => {
  process.stdout.write(JSON.stringify({ word: ${JSON.stringify(word)}, n: outer(20), base: path.basename(__filename), eol: os.EOL === "\\n" }));
});
` + (wrapped ? "})" : "");

let dir = "";
let dist = "";

/** A program laid out as apps/<program>/ is: bin/prog (CommonJS), dist/bundle.cjs, dist/bundle.inputs.json. */
function makeProgram(word = "hello") {
  dir = mkdtempSync(join(tmpdir(), "dbts-launch-"));
  dist = join(dir, "dist");
  mkdirSync(join(dir, "bin"));
  mkdirSync(dist);
  writeFileSync(join(dir, "bin", "prog"), `require(${JSON.stringify(launcher)}).launch(__filename);\n`);
  writeFileSync(join(dir, "bin", "package.json"), '{ "type": "commonjs" }\n');
  writeFileSync(join(dist, "bundle.cjs"), bundleSource(word));
  writeFileSync(join(dist, "bundle.inputs.json"), "[]\n");
}

async function runProg(env: Record<string, string> = {}, nodeArgs: string[] = []) {
  const { stdout } = await run(process.execPath, [...nodeArgs, join(dir, "bin", "prog")], { env: { ...process.env, ...env } });
  return JSON.parse(stdout) as { word: string; n: number; base: string; eol: boolean };
}

const caches = () => readdirSync(dist).filter((f) => f.endsWith(".v8cache"));
const leftovers = () => readdirSync(dist).filter((f) => f.endsWith(".tmp"));

function onlyCache() {
  const c = caches();
  expect(c).toHaveLength(1);
  return join(dist, c[0]!);
}

beforeEach(() => makeProgram());
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("launcher code cache", () => {
  it("the first run writes a cache only its owner can change; later runs use it as it is", async () => {
    expect(await runProg()).toEqual({ word: "hello", n: 41, base: "bundle.cjs", eol: true });
    const file = onlyCache();
    const st = statSync(file);
    expect(st.mode & 0o777).toBe(0o644);
    expect(st.uid).toBe(process.geteuid!());
    await runProg();
    await runProg();
    // Used, not remade: the same file.
    expect(statSync(file).ino).toBe(st.ino);
    expect(statSync(file).mtimeMs).toBe(st.mtimeMs);
    expect(leftovers()).toEqual([]);
  });

  it("a corrupt cache (one byte of V8's data changed) is not used; the run goes on and remakes it", async () => {
    await runProg();
    const file = onlyCache();
    const buf = readFileSync(file);
    buf[buf.length - 100]! ^= 0x55;
    writeFileSync(file, buf);
    const ino = statSync(file).ino;
    expect((await runProg()).n).toBe(41);
    expect(statSync(file).ino).not.toBe(ino);
    const fresh = statSync(file).ino;
    await runProg();
    expect(statSync(file).ino).toBe(fresh);
  });

  it("a truncated, an empty or a garbage cache file costs a plain compile, never the run", async () => {
    await runProg();
    const file = onlyCache();
    const good = readFileSync(file);
    for (const bad of [good.subarray(0, good.length >> 1), Buffer.alloc(0), Buffer.from("not a cache at all\n")]) {
      writeFileSync(file, bad);
      expect((await runProg()).word).toBe("hello");
      // Remade whole: the next run uses it as it is.
      const remade = statSync(file);
      expect(remade.size).toBeGreaterThan(bad.length);
      await runProg();
      expect(statSync(file).ino).toBe(remade.ino);
    }
  });

  it("a cache V8 rejects (made under other V8 flags) is dropped, and the next run makes a good one", async () => {
    // --no-opt changes V8's flag hash, so that run's cache file has another name.
    await runProg({}, ["--no-opt"]);
    const other = onlyCache();
    const plainName = await (async () => {
      rmSync(other);
      await runProg();
      const name = onlyCache();
      rmSync(name);
      return name;
    })();
    await runProg({}, ["--no-opt"]);
    // Put the --no-opt cache where a plain run looks: our header matches, V8's flags do not.
    writeFileSync(plainName, readFileSync(onlyCache()));
    expect((await runProg()).n).toBe(41);
    expect(caches()).not.toContain(plainName.slice(dist.length + 1));
    await runProg();
    const made = statSync(plainName).ino;
    await runProg();
    expect(statSync(plainName).ino).toBe(made);
  });

  it("a bundle without the wrapper (an older build) runs, with its own cache", async () => {
    writeFileSync(join(dist, "bundle.cjs"), bundleSource("old", false));
    expect(await runProg()).toEqual({ word: "old", n: 41, base: "bundle.cjs", eol: true });
    const ino = statSync(onlyCache()).ino;
    expect((await runProg()).word).toBe("old");
    expect(statSync(onlyCache()).ino).toBe(ino);
  });

  it("a rebuilt bundle of the same length never runs the old bundle's cached code", async () => {
    await runProg();
    const file = onlyCache();
    const ino = statSync(file).ino;
    writeFileSync(join(dist, "bundle.cjs"), bundleSource("world"));
    expect((await runProg()).word).toBe("world");
    expect(statSync(file).ino).not.toBe(ino);
  });

  it("a cache file others may write is not trusted, and is replaced", async () => {
    await runProg();
    const file = onlyCache();
    chmodSync(file, 0o666);
    expect((await runProg()).n).toBe(41);
    expect(statSync(file).mode & 0o777).toBe(0o644);
  });

  it.runIf(asRoot)("a cache file owned by another user is not trusted, and is replaced", async () => {
    await runProg();
    const file = onlyCache();
    chownSync(file, 65534, 65534);
    expect((await runProg()).n).toBe(41);
    expect(statSync(file).uid).toBe(0);
  });

  it.runIf(asRoot)("no cache is written into a directory another user owns", async () => {
    chownSync(dist, 65534, 65534);
    expect((await runProg()).n).toBe(41);
    expect(caches()).toEqual([]);
  });

  it("DROPBEAR_TS_CODE_CACHE=0 switches it off", async () => {
    expect((await runProg({ DROPBEAR_TS_CODE_CACHE: "0" })).n).toBe(41);
    expect(caches()).toEqual([]);
  });

  it("keeps the newest four caches (one per Node and flags) and clears a dead writer's temporary file", async () => {
    for (let i = 0; i < 6; i++) {
      await runProg({}, [`--title=prog${i}`]);
    }
    expect(caches()).toHaveLength(4);
    const stale = join(dist, "bundle.cjs.0123456789abcdef.v8cache.abc.tmp");
    writeFileSync(stale, "half");
    utimesSync(stale, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const fresh = join(dist, "bundle.cjs.0123456789abcdef.v8cache.def.tmp");
    writeFileSync(fresh, "being written");
    await runProg({}, ["--title=prog6"]);
    expect(caches()).toHaveLength(4);
    expect(leftovers()).toEqual(["bundle.cjs.0123456789abcdef.v8cache.def.tmp"]);
  });

  it("parallel first runs all succeed and leave one whole cache, no temporary files", async () => {
    const outs = await Promise.all(Array.from({ length: 6 }, () => runProg()));
    expect(outs.every((o) => o.n === 41)).toBe(true);
    const file = onlyCache();
    expect(leftovers()).toEqual([]);
    const ino = statSync(file).ino;
    await runProg();
    expect(statSync(file).ino).toBe(ino);
  });
});

describe("which program the launcher runs", () => {
  const info = () => join(dist, "pkg.tsbuildinfo");
  const sha = (text: string) => createHash("sha256").update(text).digest("hex");
  /** A package the bundle was made from, its build-info recorded as `recorded`, now holding `now`, touched `ageMs` from now. */
  function input(recorded: string, now: string, ageMs: number) {
    writeFileSync(join(dist, "main.js"), 'process.stdout.write(JSON.stringify({ word: "graph", n: 0, base: "main.js", eol: true }));\n');
    writeFileSync(info(), now);
    const t = new Date(Date.now() + ageMs);
    utimesSync(info(), t, t);
    writeFileSync(join(dist, "bundle.inputs.json"), JSON.stringify([{ file: "pkg.tsbuildinfo", sha256: sha(recorded) }]));
  }

  it("the bundle, when no package it was made from was built since", async () => {
    input("v1", "v2", -60_000);
    expect((await runProg()).base).toBe("bundle.cjs");
  });

  it("the bundle, when a package's build-info was only rewritten as it was (turbo's cache restoring it)", async () => {
    input("v1", "v1", 60_000);
    expect((await runProg()).base).toBe("bundle.cjs");
  });

  it("the module graph, when a package was built again with a different result since", async () => {
    input("v1", "v2", 60_000);
    expect((await runProg()).base).toBe("main.js");
  });
});

describe("the Node it runs on", () => {
  const { nodeSupported } = createRequire(import.meta.url)(launcher) as { nodeSupported: (v: string) => boolean };

  it("only Nodes that require() ES modules without a flag: 20.19+, 22.12+, 23+ (as engines says)", () => {
    for (const v of ["v20.19.0", "v20.20.2", "v22.12.0", "v22.23.5", "v23.0.0", "v24.22.3", "v30.1.0"]) expect(nodeSupported(v), v).toBe(true);
    for (const v of ["v12.22.9", "v18.20.8", "v20.18.3", "v21.7.3", "v22.0.0", "v22.11.0"]) expect(nodeSupported(v), v).toBe(false);
    const root = fileURLToPath(new URL("..", import.meta.url));
    // The published package's: pack.test.ts.
    expect((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { engines: { node: string } }).engines.node).toBe("^20.19.0 || >=22.12.0");
  });

  it("an older Node gets one line naming the Node needed and exit status 1, not a crash inside; nothing runs or is cached", async () => {
    // Node 18 has no process.getBuiltinModule, Node 22.11 no require() of @noble/ciphers: a
    // preload makes this Node say it is one of them.
    const fake = join(dir, "old-node.cjs");
    writeFileSync(fake, 'Object.defineProperty(process, "version", { value: process.env.FAKE_NODE_VERSION });\n');
    for (const version of ["v18.20.8", "v22.11.0"]) {
      const r = await run(process.execPath, ["-r", fake, join(dir, "bin", "prog")], { env: { ...process.env, FAKE_NODE_VERSION: version } }).then(
        () => ({ code: 0, stdout: "ran", stderr: "" }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
      expect(r).toMatchObject({ code: 1, stdout: "", stderr: `prog: dropbear-ts needs Node.js 20.19 or later (22.12 or later on 22); this is Node ${version}\n` });
    }
    expect(caches()).toEqual([]);
  });

  it("the launcher parses on Node 12, so that such a Node reaches that line", async () => {
    // esbuild rewrites only syntax newer than its target: nothing to rewrite, nothing too new.
    const { transformSync } = await import("esbuild");
    const source = readFileSync(launcher, "utf8");
    const asIs = transformSync(source, { loader: "js", target: "esnext" }).code;
    expect(transformSync(source, { loader: "js", target: "node12", supported: { "dynamic-import": true } }).code).toBe(asIs);
  });
});

describe("the bin scripts' first lines", () => {
  const { SHELL_HEAD } = createRequire(import.meta.url)(launcher) as { SHELL_HEAD: string };
  const root = fileURLToPath(new URL("..", import.meta.url));

  it("every program's bin begins with them", () => {
    for (const p of ["dbclient", "dropbear", "dropbearkey", "dropbearconvert"]) {
      expect(readFileSync(join(root, "apps", p, "bin", p), "utf8").startsWith(SHELL_HEAD), p).toBe(true);
    }
  });

  it("run as a command, sh passes the ignored signals and the arguments on to Node; `node <bin>` skips the line", async () => {
    const bin = join(dir, "bin", "prog");
    writeFileSync(bin, `${SHELL_HEAD}require(${JSON.stringify(launcher)}).launch(__filename);\n`);
    chmodSync(bin, 0o755);
    writeFileSync(join(dist, "bundle.cjs"), `process.stdout.write(JSON.stringify({ mask: process.env.DROPBEAR_TS_SIGIGN ?? null, args: process.argv.slice(2) }));`);
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    const asCommand = await run("sh", ["-c", `trap '' HUP QUIT; exec "$0" "$@"`, bin, "a b", "", "$HOME"], { env });
    const got = JSON.parse(asCommand.stdout) as { mask: string; args: string[] };
    expect(Number(BigInt(`0x${got.mask}`) & 0xfn)).toBe(5);
    expect(got.args).toEqual(["a b", "", "$HOME"]);
    expect(JSON.parse((await run(process.execPath, [bin, "x"], { env })).stdout)).toEqual({ mask: null, args: ["x"] });
  });

  it("under a hard descriptor limit Node cannot start with (it dies of SIGSEGV below 18 on Node 20, 21 on Node 24), each program says so and exits 1", async () => {
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    for (const p of ["dbclient", "dropbear", "dropbearkey", "dropbearconvert"]) {
      const r = await new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) => {
        const c = spawn("prlimit", ["--nofile=16:16", join(root, "apps", p, "bin", p), "-h"], { env, stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        c.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        c.on("close", (code, signal) => resolve({ code, signal, stderr }));
      });
      expect(r, p).toEqual({ code: 1, signal: null, stderr: `${p}: Node.js needs at least 21 open files, and the hard limit is 16 (ulimit -Hn)\n` });
    }
  });

  it("run through a link, a program takes the link's name as its argv[0], as C's do (`ln -s dbclient ssh`)", async () => {
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    symlinkSync(join(root, "apps", "dbclient", "bin", "dbclient"), join(dir, "ssh"));
    symlinkSync(join(root, "apps", "dropbearkey", "bin", "dropbearkey"), join(dir, "dbkey"));
    const help = await run(join(dir, "ssh"), ["-h"], { env }).catch((e: { stderr: string }) => e);
    expect(help.stderr).toMatch(/^Usage: ssh \[options\]/m);
    const key = await run(join(dir, "dbkey"), [], { env }).catch((e: { stderr: string }) => e);
    expect(key.stderr).toMatch(/^Usage: dbkey -t <type>/m);
    // The bin itself, and `node <bin>`, keep the program's name.
    const direct = await run(process.execPath, [join(root, "apps", "dbclient", "bin", "dbclient"), "-h"], { env }).catch((e: { stderr: string }) => e);
    expect(direct.stderr).toMatch(/^Usage: dbclient \[options\]/m);
  });

  it("run as a command, the programs pass on the descriptor limit they were started with, which Node raises: dbclient's proxy command gets it", async () => {
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    const bin = join(root, "apps", "dbclient", "bin", "dbclient");
    const proxy = "/bin/sh -c 'echo limit=$(ulimit -Sn) env=$(env | grep -c DROPBEAR_TS_) >&2; exit 3'";
    const r = await run("prlimit", ["--nofile=700:4096", bin, "-J", proxy, "nobody@127.0.0.1", "true"], { env }).catch((e: { stderr: string }) => e);
    expect(r.stderr).toContain("limit=700 env=0");
    // `node <bin>` has no sh line to read it: the proxy gets Node's raised limit.
    const direct = await run("prlimit", ["--nofile=700:4096", process.execPath, bin, "-J", proxy, "nobody@127.0.0.1", "true"], { env }).catch((e: { stderr: string }) => e);
    expect(direct.stderr).toContain("limit=4096 env=0");
  });

  it("run as a command, sh holds NODE_EXTRA_CA_CERTS back from Node's start, set or empty", async () => {
    const bin = join(dir, "bin", "prog");
    writeFileSync(bin, `${SHELL_HEAD}require(${JSON.stringify(launcher)}).launch(__filename);\n`);
    chmodSync(bin, 0o755);
    writeFileSync(join(dist, "bundle.cjs"), `process.stdout.write(JSON.stringify([process.env.NODE_EXTRA_CA_CERTS ?? null, process.env.${LAUNCHER_HELD_CA_ENV} ?? null]));`);
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    delete env[LAUNCHER_HELD_CA_ENV];
    // A file Node would fail to read shows whether it was read: Node warns on stderr when it tries.
    const missing = join(dir, "no-such-ca.pem");
    const held = await run(bin, [], { env: { ...env, NODE_EXTRA_CA_CERTS: missing } });
    expect(JSON.parse(held.stdout)).toEqual([null, missing]);
    expect(held.stderr).toBe("");
    expect(JSON.parse((await run(bin, [], { env: { ...env, NODE_EXTRA_CA_CERTS: "" } })).stdout)).toEqual([null, ""]);
    delete env.NODE_EXTRA_CA_CERTS;
    expect(JSON.parse((await run(bin, [], { env })).stdout)).toEqual([null, null]);
    // Node 20 reads the bundle as it starts, so `node <bin>` (no sh line) warns about it; Node 24
    // reads it only when TLS first needs it, and warns about nothing here.
    const eager = (await run(process.execPath, ["-e", "0"], { env: { ...env, NODE_EXTRA_CA_CERTS: missing } })).stderr.includes("Ignoring extra certs");
    const direct = await run(process.execPath, [bin], { env: { ...env, NODE_EXTRA_CA_CERTS: missing } });
    expect(direct.stderr.includes("Ignoring extra certs")).toBe(eager);
  });

  it("run as a command on an AMD processor, sh sets glibc's copy tunable unless GLIBC_TUNABLES is set", async () => {
    const bin = join(dir, "bin", "prog");
    writeFileSync(bin, `${SHELL_HEAD}require(${JSON.stringify(launcher)}).launch(__filename);\n`);
    chmodSync(bin, 0o755);
    writeFileSync(join(dist, "bundle.cjs"), `process.stdout.write(JSON.stringify([process.env.GLIBC_TUNABLES ?? null, process.env.${LAUNCHER_TUNABLES_ENV} ?? null]));`);
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    delete env.GLIBC_TUNABLES;
    delete env[LAUNCHER_TUNABLES_ENV];
    const amd = cpuVendor() === "AuthenticAMD";
    expect(JSON.parse((await run(bin, [], { env })).stdout)).toEqual(amd ? [AMD_COPY_TUNABLES, "1"] : [null, null]);
    expect(JSON.parse((await run(bin, [], { env: { ...env, GLIBC_TUNABLES: "glibc.malloc.arena_max=4" } })).stdout)).toEqual(["glibc.malloc.arena_max=4", null]);
    expect(SHELL_HEAD).toContain(`export GLIBC_TUNABLES=${AMD_COPY_TUNABLES} ${LAUNCHER_TUNABLES_ENV}=1;`);
  });
});

describe("the programs' names in ps", () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  /** The kernel's name for `pid`, which a program sets as it starts: asked until it is `want`, at most 10 s. */
  const named = (pid: number, want: string) => expect.poll(() => readFileSync(`/proc/${pid}/comm`, "utf8").trim(), { timeout: 10_000 }).toBe(want);

  it("each is named as exec names a C program, after the file it was started by, not `node`: pgrep dbclient, killall dropbear", async () => {
    const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
    symlinkSync(join(root, "apps", "dbclient", "bin", "dbclient"), join(dir, "ssh"));
    // A proxy command that never answers keeps dbclient waiting for the server's version line.
    for (const [bin, want] of [[join(root, "apps", "dbclient", "bin", "dbclient"), "dbclient"], [join(dir, "ssh"), "ssh"]] as const) {
      const child = spawn(bin, ["-J", "sleep 20", "nobody@127.0.0.1", "true"], { env, stdio: "ignore" });
      try {
        await named(child.pid!, want);
      } finally {
        child.kill();
      }
    }
    const server = await startOurDropbearWithHostKey(dir);
    try {
      await named(server.child.pid!, "dropbear");
      // The warm spare, which becomes a connection process: Dropbear's re-executed one names itself too.
      await named(await waitSpare(server.child.pid!), "dropbear");
    } finally {
      await server.stop();
    }
  }, 60_000);
});
