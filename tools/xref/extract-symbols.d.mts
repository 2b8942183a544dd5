// Types for extract-symbols.mjs.
import type { DropbearSymbols } from "./xref.mjs";

export function stripCommentsAndStrings(src: string): string;
export function splitPreprocessor(text: string): {
  code: string[];
  macros: string[];
  directives: { line: number; kind: string }[];
};
export function extractSymbols(src: string): { symbols: string[]; warnings: string[] };
export function extractFromGit(gitDir: string, rev?: string): { doc: DropbearSymbols; warnings: string[] };
