// Types for package-graph.mjs, so TypeScript tests can import it.

/** A workspace package: its name without the @dropbear-ts/ scope, directory, and edges. */
export interface WorkspacePackage {
  name: string;
  /** The name in its package.json, scope and all. */
  packageName: string;
  dir: string;
  /** Workspace packages its src/ imports, plus the workspace devDependencies it bundles. */
  imports: string[];
  /** Workspace packages its package.json lists or its tsconfig.json references. */
  declared: string[];
}

export const repoRoot: string;
export const architecturePath: string;
export const BEGIN: string;
export const END: string;
export function importedPackages(source: string): Set<string>;
export function readPackages(root?: string): WorkspacePackage[];
export function checkGraph(pkgs: WorkspacePackage[]): string[];
export function layers(pkgs: WorkspacePackage[]): string[][] | null;
export function directEdges(pkgs: WorkspacePackage[]): [string, string][];
export function renderGraph(pkgs: WorkspacePackage[]): string;
export function withGraph(page: string, pkgs: WorkspacePackage[]): string;
