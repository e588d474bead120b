// Runs every *.test.mjs of this directory in one node process:
// `node --import ./jstest/register.mjs --test jstest/all.mjs` (the Go
// test TestJavaScriptUnits does, once per time zone).

import { readdirSync } from 'node:fs';

const dir = new URL('./', import.meta.url);
for (const f of readdirSync(dir).filter((n) => n.endsWith('.test.mjs')).sort()) {
  await import(new URL(f, dir));
}
