// Prints the QR codes of the texts given as JSON on standard input, for
// TestQREncoderDecodes (Go), which decodes each with phr's QR reader:
// [{"text", "minVersion", "mask"}] in, [{"version", "size", "rows"}] out,
// rows as strings of 0 and 1.

import { encode } from '../assets/js/qr.mjs';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const out = JSON.parse(input).map((c) => {
  const q = encode(c.text, { minVersion: c.minVersion || 1, mask: c.mask === undefined ? -1 : c.mask });
  return { version: q.version, size: q.size, mask: q.mask, rows: q.dark.map((r) => r.map((d) => (d ? '1' : '0')).join('')) };
});
process.stdout.write(JSON.stringify(out));
