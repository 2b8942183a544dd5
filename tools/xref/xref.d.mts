// Types for xref.mjs, so TypeScript tests and tools can import it.

/** Dropbear's defined identifiers per src/ file, as dropbear-2026.94-symbols.json stores them. */
export interface DropbearSymbols {
  dropbear: string;
  commit: string;
  files: Record<string, string[]>;
}

/** One `@dropbear <file> <symbol>` tag found in a TS source. */
export interface XrefTag {
  cFile: string;
  cSymbol: string;
  /** Repo-relative path with forward slashes. */
  tsFile: string;
  /** 1-based line of the documented declaration (of the tag itself when inline). */
  line: number;
  /** The declared TS name, or INLINE. */
  tsName: string;
}

export interface SourceFile {
  path: string;
  text: string;
}

export const repoRoot: string;
export const symbolsPath: string;
export const xrefPath: string;
export const INLINE: "(inline)";
export function compareStrings(a: string, b: string): number;
export function loadSymbols(path?: string): DropbearSymbols;
export function readSources(root?: string): SourceFile[];
export function declaredName(text: string): string;
export function collectTags(sources: readonly SourceFile[]): XrefTag[];
export function validateTags(tags: readonly XrefTag[], symbols: DropbearSymbols): string[];
export function renderXref(tags: readonly XrefTag[], symbols: DropbearSymbols): string;
export function main(args: readonly string[], root?: string): number;
