// ViewerError is an error the page explains to the reader: kind says
// which page or message follows, message is fit to show.

import { S } from './strings.mjs';

export class ViewerError extends Error {
  constructor(kind, message, extra) {
    super(message);
    this.kind = kind;
    Object.assign(this, extra || {});
  }
}

export function messageOf(e) {
  if (e instanceof ViewerError) return e.message;
  if (e instanceof SyntaxError) return S.err.notJSON;
  return S.err.unreadable;
}
