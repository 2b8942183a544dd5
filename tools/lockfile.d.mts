// Types for lockfile.mjs, so TypeScript tests can import it.

/** One entry of package-lock.json's `packages` (the fields the checks and tests read). */
export interface LockEntry {
  version?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  engines?: Record<string, string>;
}

/** package-lock.json (lockfileVersion 3): entries keyed by path, "" being the root. */
export interface Lock {
  packages: Record<string, LockEntry>;
}

export const lockPath: string;
export function readLock(): Lock;
export function resolveInLock(packages: Record<string, LockEntry>, from: string, name: string): string | null;
export function missingOptionalPackages(lock: Lock): { parent: string; name: string }[];
export function runtimePackages(lock: Lock, workspace?: string): string[];
export function engineProblems(lock: Lock, range: string): { key: string; engines: string }[];
