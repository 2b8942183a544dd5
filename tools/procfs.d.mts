// Types for procfs.mjs, so TypeScript tests can import it.

export function statFields(pid: number | string): string[] | null;
export function threadNices(pid: number): Map<number, number>;
export function capEff(pid: number): bigint | null;
export function procStat(pid: number): { state: string; ppid: number; ticks: number; start: number } | null;
export function uptimeTicks(): number;
export function parents(): Map<number, number>;
export function tcpInodes(state?: string): Set<string>;
export function socketInodes(pid: number): string[];
export function rssKiB(pid: number): number | null;
export function anonKiB(pid: number): number | null;
