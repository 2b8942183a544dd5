// Self-time table of a V8 .cpuprofile (what `node --cpu-prof` writes): the functions the
// samples landed in, by share of all samples, with file:line. For the notes in docs/bench.md.
//
//   node bench/cpuprof-top.mjs FILE.cpuprofile [N]
import { readFileSync } from "node:fs";

const [file, n = "25"] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const counts = new Map();
for (const id of prof.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
const self = new Map();
let total = 0;
for (const [id, c] of counts) {
  const { functionName, url, lineNumber } = byId.get(id).callFrame;
  const where = url ? `${url.replace(/^.*\/(packages|apps|node_modules)\//, "$1/")}:${lineNumber + 1}` : "";
  const key = `${functionName || "(anonymous)"}\t${where}`;
  self.set(key, (self.get(key) ?? 0) + c);
  total += c;
}
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n));
console.log(`${file}: ${total} samples`);
for (const [key, c] of rows) {
  const [fn, where] = key.split("\t");
  console.log(`${((100 * c) / total).toFixed(1).padStart(5)} %  ${fn.padEnd(36)} ${where}`);
}
