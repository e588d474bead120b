// Module resolution for the node tests: the app imports the viewer's
// modules by their URL path (/view/js/NAME.mjs), which phrd serves from
// pkg/viewer/assets/js; here they are read from there.

const viewer = new URL('../../viewer/assets/js/', import.meta.url);

export async function resolve(specifier, context, next) {
  if (specifier.startsWith('/view/js/')) return next(new URL(specifier.slice('/view/js/'.length), viewer).href, context);
  return next(specifier, context);
}
