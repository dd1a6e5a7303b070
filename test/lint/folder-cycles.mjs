// Folder-level import cycles, from dependency-cruiser's JSON on stdin
// (`depcruise --output-type json`). dependency-cruiser's own folder rules count a
// folder's subfolders as part of it, so src/ itself would sit in every cycle;
// here each module counts for the folder right under src/, adapters/ or models/
// (src/engine/simd counts as src/engine), and a file directly there stands alone.
// Exits 1, naming the file imports behind each cycle, when two such folders
// reach each other.
import { readFileSync } from 'node:fs';

const folderOf = (path) => /^(src|adapters|models)\/[^/]+/.exec(path)?.[0] ?? null;

const { modules } = JSON.parse(readFileSync(0, 'utf8'));
/** folder -> folder -> the file imports that make the edge */
const edges = new Map();
for (const module of modules) {
  const from = folderOf(module.source);
  if (!from) continue;
  for (const dependency of module.dependencies) {
    const to = folderOf(dependency.resolved);
    if (!to || to === from) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    const out = edges.get(from);
    if (!out.has(to)) out.set(to, []);
    out.get(to).push(`${module.source} -> ${dependency.resolved}`);
  }
}

// Tarjan's strongly connected components: each one with two or more folders is a cycle.
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
let counter = 0;
function visit(folder) {
  index.set(folder, counter);
  low.set(folder, counter);
  counter += 1;
  stack.push(folder);
  onStack.add(folder);
  for (const next of edges.get(folder)?.keys() ?? []) {
    if (!index.has(next)) {
      visit(next);
      low.set(folder, Math.min(low.get(folder), low.get(next)));
    } else if (onStack.has(next)) {
      low.set(folder, Math.min(low.get(folder), index.get(next)));
    }
  }
  if (low.get(folder) !== index.get(folder)) return;
  const component = [];
  let member;
  do {
    member = stack.pop();
    onStack.delete(member);
    component.push(member);
  } while (member !== folder);
  if (component.length > 1) components.push(component.sort());
}
for (const folder of [...edges.keys()].sort()) if (!index.has(folder)) visit(folder);

if (components.length === 0) {
  console.log('no folder cycles');
} else {
  for (const component of components) {
    console.error(`folder cycle: ${component.join(' <-> ')}`);
    const members = new Set(component);
    for (const from of component) {
      for (const [to, imports] of edges.get(from) ?? []) {
        if (!members.has(to)) continue;
        console.error(`  ${from} -> ${to}:`);
        for (const line of imports) console.error(`    ${line}`);
      }
    }
  }
  process.exitCode = 1;
}
