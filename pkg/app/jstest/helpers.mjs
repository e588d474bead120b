// Shared helpers of the app's node tests.

import { readFileSync } from 'node:fs';

// shared is the project's shared test data (../shared/testdata from the
// repository root).
export const shared = new URL('../../../../shared/testdata/', import.meta.url);

export function readJSON(path) {
  return JSON.parse(readFileSync(new URL(path, shared), 'utf8'));
}

// rows turns describe()'s rows into an object, label → value.
export function rows(list) {
  return Object.fromEntries(list.map((r) => [r.label, r.value]));
}
