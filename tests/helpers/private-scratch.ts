// Apart from servers.ts, whose imports probe the machine's peers: the vitest setup file
// (own-home.ts) uses it in every test file.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/**
 * A scratch directory whose every parent is ours or root's and not group/world writable, as
 * Dropbear's authorized_keys permission walk demands (/tmp is world writable).
 */
export function privateScratch(prefix = "dbts-"): { dir: string; cleanup: () => void } {
  const base = join(homedir(), ".cache", "dropbear-ts-tests");
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(join(base, prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
