// What apps/<program>/bin/<program> runs: the program's compiled JS, from one bundled file with
// V8's code cache when it can, else from the ES module graph of dist/main.js. The bin scripts
// and this file are CommonJS (apps/<program>/bin/package.json says so): an ES module entry
// point starts Node's ES module loader, 6-9 ms of CPU before the program's first line.
//
// The program is dist/bundle.cjs, one file built by `npm run build` (bundle-bin.mjs), unless a
// package it was made from was built again since (`program`): it starts ~90 ms sooner than the
// module graph of dist/main.js, which is loaded instead after a `tsc -b` that did not bundle. That
// graph is loaded through require(): Node then reads it one file at a time, where import()
// opens every file of it at once (over a hundred), which fails with EMFILE under a small
// descriptor limit before main runs. (Node >= 20.19 requires ES modules without a flag.)
//
// The bundle is compiled as a vm.Script with V8's code cache (docs/process-model.md, "Code
// cache"): V8 compiles a function only when it is first called, and those compiles were about
// a third of dbclient's CPU on a connection. The cache holds every function of the bundle,
// compiled once, beside the bundle in a file only the bundle's owner writes.
//
// A Node the programs do not run on gets one line saying so (requireSupportedNode), first thing:
// so this file parses on Node 12 and later (no `?.`, `??` or numeric separators), and the check
// comes before any require("node:..."), which Node 12 cannot resolve.
"use strict";
requireSupportedNode();
const { createRequire } = require("node:module");
const { accessSync, closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } = require("node:fs");
const { createHash, randomBytes } = require("node:crypto");
const { basename, dirname, join } = require("node:path");
const vm = require("node:vm");

/**
 * How every bin script begins, the monorepo's and the package's: a sh script to the kernel, a
 * string and a comment to Node. Node resets each signal its parent left ignored (but SIGPIPE
 * and SIGXFSZ) before any JavaScript runs, and Dropbear's programs keep them ignored, so sh
 * passes /proc's SigIgn mask on to the program (packages/dbutil/src/sigign.ts) and execs Node
 * on the same file. On an AMD processor, unless GLIBC_TUNABLES is set already, it also sets
 * glibc's copies to do without `rep movsb` (packages/dbutil/src/tunables.ts), which glibc reads
 * only as a process starts; and it holds NODE_EXTRA_CA_CERTS back from Node's start, where Node
 * would parse that CA bundle for TLS we never speak (tunables.ts again; the program puts it back
 * in its environment). Node raises its soft limit on open descriptors to the hard one as it
 * starts, where Dropbear's programs pass theirs on to the commands they run, so sh passes that
 * limit on too (packages/dbutil/src/nofile.ts). Node runs with one V8 worker thread, not four (`--v8-pool-size=1`, a
 * Node option that leaves Node's code cache of its own modules usable): more only compete with
 * a local peer for the cores while a program starts (docs/process-model.md). `node <bin>` runs
 * the file as JavaScript directly, without any of this.
 */
const SHELL_HEAD =
  '#!/bin/sh\n":" //; v=; [ -r /proc/$$/status ] && while read -r k v; do [ "$k" = SigIgn: ] && break; v=; done </proc/$$/status; [ -z "${GLIBC_TUNABLES+x}" ] && [ -r /proc/cpuinfo ] && while read -r k w; do case $k in vendor_id) [ "$w" = ": AuthenticAMD" ] && export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1099511627776 DROPBEAR_TS_GLIBC_TUNABLES=1; break;; "") break;; esac; done </proc/cpuinfo; [ -n "${NODE_EXTRA_CA_CERTS+x}" ] && export DROPBEAR_TS_HELD_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS" && unset NODE_EXTRA_CA_CERTS; f=; h=; [ -r /proc/$$/limits ] && while read -r k w x f h y; do [ "$k $w $x" = "Max open files" ] && break; f=; h=; done </proc/$$/limits; [ "$h" -lt 21 ] 2>/dev/null && { echo "${0##*/}: Node.js needs at least 21 open files, and the hard limit is $h (ulimit -Hn)" >&2; exit 1; }; DROPBEAR_TS_SIGIGN=$v DROPBEAR_TS_NOFILE=$f exec node --v8-pool-size=1 "$0" "$@"\n';

/**
 * The file to load: the bundle, or the module graph's entry when the bundle is stale: when a
 * package it was made from has been built again since, with a different result. The build-info
 * files' times say which may have been; their SHA-256, recorded at bundling, says which were
 * (turbo's cache and esbuild, which leaves an unchanged bundle unwritten, move times without
 * changing anything).
 */
function program(dist) {
  const main = join(dist, "main.js");
  try {
    const bundle = join(dist, "bundle.cjs");
    // A second of slack: turbo restores a cached build's files in no set order.
    const built = statSync(bundle).mtimeMs + 1000;
    for (const { file, sha256: digest } of JSON.parse(readFileSync(join(dist, "bundle.inputs.json"), "utf8"))) {
      const path = join(dist, file);
      if (statSync(path).mtimeMs > built && sha256(readFileSync(path)).toString("hex") !== digest) {
        return main;
      }
    }
    return bundle;
  } catch {
    return main;
  }
}

/**
 * Whether a Node version (`process.version`) runs the programs: they require() ES modules
 * (@noble/ciphers' Poly1305, pako, dist/main.js when the bundle is stale), which Node does
 * without a flag from 20.19 and 22.12 on; 21 never did. Older ones fail deep inside, often only
 * once a connection is up, so the launcher refuses them first.
 */
function nodeSupported(version) {
  const [major, minor] = version.replace(/^v/, "").split(".").map(Number);
  return major === 20 ? minor >= 19 : major === 22 ? minor >= 12 : major >= 23;
}

/** Exit with a line naming the Node needed, unless this one runs the programs. */
function requireSupportedNode() {
  if (nodeSupported(process.version)) return;
  // The name it was run by, as the programs' own messages (`ln -s dbclient ssh`).
  const program = (process.argv[1] || "dropbear-ts").replace(/^.*\//, "").replace(/\.cjs$/, "");
  process.stderr.write(`${program}: dropbear-ts needs Node.js 20.19 or later (22.12 or later on 22); this is Node ${process.version}\n`);
  process.exit(1);
}

/** Run the program whose bin script is `binFile` (its __filename). */
function launch(binFile) {
  const main = program(join(dirname(binFile), "..", "dist"));
  if (main.endsWith(".cjs")) {
    runBundle(main);
    return;
  }
  try {
    require(main);
  } catch (e) {
    // A module with top-level await cannot be required; import() still can load it.
    if (!e || e.code !== "ERR_REQUIRE_ASYNC_MODULE") throw e;
    import(require("node:url").pathToFileURL(main).href).catch((err) => {
      process.exitCode = 1;
      throw err;
    });
  }
}

// The bundle runs as Node runs a CommonJS file, inside a function of the same parameters.
// bundle-bin.mjs writes the bundle already wrapped (compiling the file as read keeps one copy
// of its source in memory, not two); an older bundle is wrapped here. The head stays on the
// first line, so line numbers in stack traces are the file's.
const HEAD = "(function (exports, require, module, __filename, __dirname) { ";
const TAIL = "\n})";

// A cache file: MAGIC, the SHA-256 of the bundle it was made from, the SHA-256 of V8's data,
// then V8's data. V8 itself checks only the source's length, its own version and flags, and
// (in release builds) nothing of the data's integrity. (node:crypto, not node:zlib's CRC-32 or
// node:v8's cache tag: the program loads node:crypto anyway, and each of the others costs 2-4
// ms of start-up.)
const MAGIC = Buffer.from("dbts-v8cache-2\n\0");
const HEADER_LEN = MAGIC.length + 64;

/** Load and run a bundle with V8's code cache, or without it when there is none to trust. */
function runBundle(file) {
  const code = readFileSync(file, "utf8");
  const source = code.startsWith(HEAD) ? code : HEAD + code + TAIL;
  // No import() in it (bundle-bin.mjs turns them into require()): a script made from a code
  // cache loses Node 20's dynamic import callback.
  const options = { filename: file };
  const cache = cachePlan(file, code);
  let script;
  if (cache && cache.data) {
    script = new vm.Script(source, { ...options, cachedData: cache.data });
    // Another build of V8 or other flags than the file name says: remade by the next run.
    if (script.cachedDataRejected) dropCache(cache);
  } else if (cache && cache.writable) {
    script = compileEagerly(source, options);
    saveCache(cache, script.createCachedData());
  } else {
    script = new vm.Script(source, options);
  }
  const module = { exports: {}, filename: file, id: ".", loaded: false };
  script.runInThisContext().call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  module.loaded = true;
}

/**
 * Where this bundle's cache is for the running Node (its version, platform and flags name the
 * file), the data there if it is trustworthy and intact, and whether this process may (re)write
 * it. Null when the cache is switched off (DROPBEAR_TS_CODE_CACHE=0).
 */
function cachePlan(file, code) {
  if (process.env.DROPBEAR_TS_CODE_CACHE === "0") return null;
  let bundle;
  try {
    bundle = statSync(file);
  } catch {
    return null;
  }
  const flavour = [process.version, process.arch, process.platform, ...process.execArgv, process.env.NODE_OPTIONS || ""].join("\0");
  const path = `${file}.${sha256(flavour).toString("hex").slice(0, 16)}.v8cache`;
  const digest = sha256(code);
  const euid = process.geteuid ? process.geteuid() : -1;
  let writable = false;
  try {
    // Only the owner of the bundle's directory writes there: it could change the bundle anyway,
    // and no process writes as root into a directory another user controls. (And not on a
    // read-only mount, where each run would compile everything for nothing.)
    writable = statSync(dirname(file)).uid === euid;
    if (writable) accessSync(dirname(file), constants.W_OK);
  } catch {
    writable = false;
  }
  return { path, digest, writable, data: readCache(path, digest, [bundle.uid, euid]) };
}

/**
 * V8's data from a cache file made for this bundle, or null. The file is code this process
 * will run: it must be a regular file, owned by the bundle's owner or by this process's user,
 * and writable by nobody else.
 */
function readCache(path, digest, owners) {
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || !owners.includes(st.uid) || (st.mode & 0o022) !== 0 || st.size <= HEADER_LEN) return null;
    const buf = Buffer.allocUnsafe(st.size);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) return null;
      got += n;
    }
    if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return null;
    if (!buf.subarray(MAGIC.length, MAGIC.length + 32).equals(digest)) return null;
    const data = buf.subarray(HEADER_LEN);
    return buf.subarray(MAGIC.length + 32, HEADER_LEN).equals(sha256(data)) ? data : null;
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Write the cache through a private temporary file and a rename, so no reader sees half of it. */
function saveCache(cache, data) {
  const tmp = `${cache.path}.${randomBytes(6).toString("hex")}.tmp`;
  const header = Buffer.alloc(HEADER_LEN);
  MAGIC.copy(header);
  cache.digest.copy(header, MAGIC.length);
  sha256(data).copy(header, MAGIC.length + 32);
  let fd;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    writeAll(fd, header);
    writeAll(fd, data);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, cache.path);
  } catch {
    // No cache this time (a full disk, a read-only tree): the program runs all the same.
    if (fd !== undefined) closeSync(fd);
    unlinkQuietly(tmp);
    return;
  }
  pruneCaches(cache.path);
}

function writeAll(fd, buf) {
  for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
}

// One cache per Node version and set of flags a bundle ran under; the newest few are kept.
const KEPT_CACHES = 4;
// A temporary file this old was left by a writer that died before its rename.
const STALE_TMP_MS = 60000;

/** Keep the newest KEPT_CACHES caches of this cache file's bundle, and no stale temporary files. */
function pruneCaches(path) {
  const dir = dirname(path);
  const prefix = `${basename(path).split(".").slice(0, -2).join(".")}.`;
  let names;
  try {
    names = readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  const caches = [];
  for (const name of names) {
    const file = join(dir, name);
    let st;
    try {
      st = lstatSync(file);
    } catch {
      continue;
    }
    if (name.endsWith(".v8cache")) caches.push({ file, mtime: st.mtimeMs });
    else if (name.endsWith(".tmp") && Date.now() - st.mtimeMs > STALE_TMP_MS) unlinkQuietly(file);
  }
  caches.sort((a, b) => b.mtime - a.mtime);
  for (const c of caches.slice(KEPT_CACHES)) unlinkQuietly(c.file);
}

function dropCache(cache) {
  if (cache.writable) unlinkQuietly(cache.path);
}

function unlinkQuietly(file) {
  try {
    unlinkSync(file);
  } catch {
    // Gone already, or never made.
  }
}

/**
 * Compile with every function compiled now rather than on its first call, so the cache made
 * from it serves whatever a later run calls (a connection process's session code included).
 * V8's --lazy is back on before anything else compiles; a run given a lazy flag by the user
 * keeps it.
 */
function compileEagerly(source, options) {
  const userSaidLazy = [...process.execArgv, process.env.NODE_OPTIONS || ""].some((a) => a.includes("lazy"));
  if (userSaidLazy) return new vm.Script(source, options);
  const v8 = process.getBuiltinModule("node:v8");
  v8.setFlagsFromString("--no-lazy");
  try {
    return new vm.Script(source, options);
  } finally {
    v8.setFlagsFromString("--lazy");
  }
}

function sha256(data) {
  return createHash("sha256").update(data).digest();
}

module.exports = { SHELL_HEAD, launch, nodeSupported, runBundle };
