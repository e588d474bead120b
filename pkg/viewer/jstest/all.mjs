// Runs every *.test.mjs of this directory in one node process:
// `node --test jstest/all.mjs` (the Go test TestJavaScriptUnits does,
// once per time zone). `node --test jstest/` runs them one process each.

import { readdirSync } from 'node:fs';

const dir = new URL('./', import.meta.url);
for (const f of readdirSync(dir).filter((n) => n.endsWith('.test.mjs')).sort()) {
  await import(new URL(f, dir));
}
