// Shared helpers of the app's node tests. The project's shared test data
// is found as the viewer's tests find it.

export { shared, readJSON } from '../../viewer/jstest/helpers.mjs';

// rows turns describe()'s rows into an object, label → value.
export function rows(list) {
  return Object.fromEntries(list.map((r) => [r.label, r.value]));
}
