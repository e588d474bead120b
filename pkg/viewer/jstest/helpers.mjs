// Shared helpers of the viewer's node tests.

import { readFileSync } from 'node:fs';

// shared is the project's shared test data (../shared/testdata from the
// repository root).
export const shared = new URL('../../../../shared/testdata/', import.meta.url);

export function readShared(path) {
  return readFileSync(new URL(path, shared), 'utf8');
}

export function readJSON(path) {
  return JSON.parse(readShared(path));
}

export function b64url(s) {
  return Buffer.from(s).toString('base64url');
}

export function bundle(...resources) {
  return {
    resourceType: 'Bundle', type: 'collection',
    entry: resources.map((r) => ({ fullUrl: 'urn:uuid:' + r.resourceType + '-' + r.id, resource: r })),
  };
}
