// QR codes (ISO/IEC 18004): the share link as a code the provider's
// phone or the viewer's camera can scan, drawn in the page, so that the
// link (and the key in it) never leaves the phone to be drawn. Byte mode,
// error correction level M (as phr's CLI makes them), versions 1 to 40,
// the mask with the lowest penalty. No DOM here: encode() returns the
// matrix and svgPath() the drawing; tested with node and, through
// TestQREncoderDecodes, with a Go QR decoder.

// Level M per version: [EC codewords per block, blocks of the first
// group, data codewords in each, blocks of the second group] (its blocks
// hold one data codeword more). From the standard's table 9.
const M_BLOCKS = [
  [10, 1, 16, 0], [16, 1, 28, 0], [26, 1, 44, 0], [18, 2, 32, 0], [24, 2, 43, 0], [16, 4, 27, 0], [18, 4, 31, 0],
  [22, 2, 38, 2], [22, 3, 36, 2], [26, 4, 43, 1], [30, 1, 50, 4], [22, 6, 36, 2], [22, 8, 37, 1], [24, 4, 40, 5],
  [24, 5, 41, 5], [28, 7, 45, 3], [28, 10, 46, 1], [26, 9, 43, 4], [26, 3, 44, 11], [26, 3, 41, 13], [26, 17, 42, 0],
  [28, 17, 46, 0], [28, 4, 47, 14], [28, 6, 45, 14], [28, 8, 47, 13], [28, 19, 46, 4], [28, 22, 45, 3], [28, 3, 45, 23],
  [28, 21, 45, 7], [28, 19, 47, 10], [28, 2, 46, 29], [28, 10, 46, 23], [28, 14, 46, 21], [28, 14, 46, 23], [28, 12, 47, 26],
  [28, 6, 47, 34], [28, 29, 46, 14], [28, 13, 46, 32], [28, 40, 47, 7], [28, 18, 47, 31],
];

const FORMAT_M = 0; // the error correction level's format bits (L 1, M 0, Q 3, H 2)

export class QRError extends Error {}

// dataCodewords is how many data codewords version v holds at level M.
export function dataCodewords(v) {
  const [, n1, d1, n2] = M_BLOCKS[v - 1];
  return n1 * d1 + n2 * (d1 + 1);
}

// totalCodewords follows from the symbol's size: every module that is not
// a function pattern holds a bit.
export function totalCodewords(v) {
  let bits = (16 * v + 128) * v + 64;
  if (v >= 2) {
    const align = Math.floor(v / 7) + 2;
    bits -= (25 * align - 10) * align - 55;
    if (v >= 7) bits -= 36;
  }
  return Math.floor(bits / 8);
}

// capacity is the most bytes version v holds in byte mode at level M.
export function capacity(v) {
  const countBits = v <= 9 ? 8 : 16;
  return Math.floor((dataCodewords(v) * 8 - 4 - countBits) / 8);
}

// ---------------------------------------------------------------- Reed-Solomon over GF(256), polynomial 0x11d

const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
}

function mul(a, b) {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]];
}

// generator returns the coefficients of prod (x - 2^i), i < degree,
// highest power first, without the leading 1.
function generator(degree) {
  let g = [1];
  for (let i = 0; i < degree; i++) {
    const next = new Array(g.length + 1).fill(0);
    for (let j = 0; j < g.length; j++) {
      next[j] ^= g[j];
      next[j + 1] ^= mul(g[j], EXP[i]);
    }
    g = next;
  }
  return g.slice(1);
}

// ecBytes is the remainder of data times x^n divided by the generator.
export function ecBytes(data, n) {
  const gen = generator(n);
  const rem = new Array(n).fill(0);
  for (const b of data) {
    const f = b ^ rem.shift();
    rem.push(0);
    for (let i = 0; i < n; i++) rem[i] ^= mul(gen[i], f);
  }
  return rem;
}

// ---------------------------------------------------------------- codewords

function utf8(text) {
  return Array.from(new TextEncoder().encode(text));
}

// codewords returns the version and the interleaved data and EC codewords
// of text.
export function codewords(text, minVersion = 1) {
  const bytes = utf8(text);
  let v = Math.max(1, minVersion);
  while (v <= 40 && capacity(v) < bytes.length) v++;
  if (v > 40) throw new QRError('too long for a QR code');
  const bits = [];
  const put = (val, n) => {
    for (let i = n - 1; i >= 0; i--) bits.push((val >>> i) & 1);
  };
  put(0b0100, 4);
  put(bytes.length, v <= 9 ? 8 : 16);
  for (const b of bytes) put(b, 8);
  const capBits = dataCodewords(v) * 8;
  put(0, Math.min(4, capBits - bits.length));
  while (bits.length % 8) bits.push(0);
  const data = [];
  for (let i = 0; i < bits.length; i += 8) {
    let b = 0;
    for (let j = 0; j < 8; j++) b = (b << 1) | bits[i + j];
    data.push(b);
  }
  for (let pad = 0xec; data.length < dataCodewords(v); pad ^= 0xec ^ 0x11) data.push(pad);

  const [ec, n1, d1, n2] = M_BLOCKS[v - 1];
  const blocks = [];
  let at = 0;
  for (let i = 0; i < n1 + n2; i++) {
    const len = i < n1 ? d1 : d1 + 1;
    const d = data.slice(at, at + len);
    at += len;
    blocks.push({ data: d, ec: ecBytes(d, ec) });
  }
  const out = [];
  for (let i = 0; i <= d1; i++) {
    for (const b of blocks) if (i < b.data.length) out.push(b.data[i]);
  }
  for (let i = 0; i < ec; i++) {
    for (const b of blocks) out.push(b.ec[i]);
  }
  return { version: v, codewords: out };
}

// ---------------------------------------------------------------- the symbol

// alignmentPositions are the centre coordinates of version v's alignment
// patterns (in both directions).
export function alignmentPositions(v) {
  if (v === 1) return [];
  const count = Math.floor(v / 7) + 2;
  const size = v * 4 + 17;
  const step = v === 32 ? 26 : Math.ceil((v * 4 + 4) / (count * 2 - 2)) * 2;
  const out = [6];
  for (let pos = size - 7; out.length < count; pos -= step) out.splice(1, 0, pos);
  return out;
}

class Symbol {
  constructor(version) {
    this.version = version;
    this.size = version * 4 + 17;
    this.dark = Array.from({ length: this.size }, () => new Array(this.size).fill(false));
    this.fixed = Array.from({ length: this.size }, () => new Array(this.size).fill(false));
  }

  set(x, y, dark) {
    this.dark[y][x] = dark;
    this.fixed[y][x] = true;
  }

  drawFunctionPatterns() {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      this.set(6, i, i % 2 === 0);
      this.set(i, 6, i % 2 === 0);
    }
    for (const [cx, cy] of [[3, 3], [n - 4, 3], [3, n - 4]]) {
      for (let dy = -4; dy <= 4; dy++) {
        for (let dx = -4; dx <= 4; dx++) {
          const x = cx + dx;
          const y = cy + dy;
          if (x < 0 || y < 0 || x >= n || y >= n) continue;
          const d = Math.max(Math.abs(dx), Math.abs(dy));
          this.set(x, y, d !== 2 && d !== 4);
        }
      }
    }
    const pos = alignmentPositions(this.version);
    const last = pos.length - 1;
    for (let i = 0; i <= last; i++) {
      for (let j = 0; j <= last; j++) {
        if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) continue;
        for (let dy = -2; dy <= 2; dy++) {
          for (let dx = -2; dx <= 2; dx++) this.set(pos[i] + dx, pos[j] + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
        }
      }
    }
    this.drawFormat(0); // reserves the format areas; redrawn with the mask
    if (this.version >= 7) {
      let rem = this.version;
      for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
      const bits = (this.version << 12) | rem;
      for (let i = 0; i < 18; i++) {
        const bit = ((bits >>> i) & 1) === 1;
        const a = n - 11 + (i % 3);
        const b = Math.floor(i / 3);
        this.set(a, b, bit);
        this.set(b, a, bit);
      }
    }
  }

  drawFormat(mask) {
    const data = (FORMAT_M << 3) | mask;
    let rem = data;
    for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
    const bits = ((data << 10) | rem) ^ 0x5412;
    const bit = (i) => ((bits >>> i) & 1) === 1;
    const n = this.size;
    for (let i = 0; i <= 5; i++) this.set(8, i, bit(i));
    this.set(8, 7, bit(6));
    this.set(8, 8, bit(7));
    this.set(7, 8, bit(8));
    for (let i = 9; i < 15; i++) this.set(14 - i, 8, bit(i));
    for (let i = 0; i < 8; i++) this.set(n - 1 - i, 8, bit(i));
    for (let i = 8; i < 15; i++) this.set(8, n - 15 + i, bit(i));
    this.set(8, n - 8, true); // the dark module
  }

  drawCodewords(words) {
    const n = this.size;
    let i = 0;
    const total = words.length * 8;
    for (let right = n - 1; right >= 1; right -= 2) {
      if (right === 6) right = 5;
      const upward = ((right + 1) & 2) === 0;
      for (let vert = 0; vert < n; vert++) {
        const y = upward ? n - 1 - vert : vert;
        for (let j = 0; j < 2; j++) {
          const x = right - j;
          if (this.fixed[y][x]) continue;
          if (i < total) this.dark[y][x] = ((words[i >>> 3] >>> (7 - (i & 7))) & 1) === 1;
          i++;
        }
      }
    }
  }

  applyMask(mask) {
    const n = this.size;
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        if (this.fixed[y][x]) continue;
        let flip;
        switch (mask) {
          case 0: flip = (x + y) % 2 === 0; break;
          case 1: flip = y % 2 === 0; break;
          case 2: flip = x % 3 === 0; break;
          case 3: flip = (x + y) % 3 === 0; break;
          case 4: flip = (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0; break;
          case 5: flip = ((x * y) % 2) + ((x * y) % 3) === 0; break;
          case 6: flip = (((x * y) % 2) + ((x * y) % 3)) % 2 === 0; break;
          default: flip = (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
        }
        if (flip) this.dark[y][x] = !this.dark[y][x];
      }
    }
  }

  // penalty scores the symbol as the standard's mask evaluation does:
  // long runs, 2x2 blocks, finder-like patterns, and an unbalanced share
  // of dark modules.
  penalty() {
    const n = this.size;
    const d = this.dark;
    let score = 0;
    const line = (get) => {
      let s = 0;
      let run = 1;
      const seq = [];
      for (let i = 0; i < n; i++) {
        const v = get(i);
        seq.push(v ? 1 : 0);
        if (i > 0 && v === get(i - 1)) {
          run++;
          if (run === 5) s += 3;
          else if (run > 5) s += 1;
        } else run = 1;
      }
      const str = seq.join('');
      for (const pat of ['10111010000', '00001011101']) {
        for (let at = str.indexOf(pat); at !== -1; at = str.indexOf(pat, at + 1)) s += 40;
      }
      return s;
    };
    for (let y = 0; y < n; y++) score += line((x) => d[y][x]);
    for (let x = 0; x < n; x++) score += line((y) => d[y][x]);
    for (let y = 0; y < n - 1; y++) {
      for (let x = 0; x < n - 1; x++) {
        const c = d[y][x];
        if (c === d[y][x + 1] && c === d[y + 1][x] && c === d[y + 1][x + 1]) score += 3;
      }
    }
    let dark = 0;
    for (const row of d) for (const c of row) if (c) dark++;
    const total = n * n;
    score += (Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1) * 10;
    return score;
  }
}

// encode returns the QR code of text: {version, size, dark: rows of
// booleans (true is a dark module)}, without the quiet zone.
export function encode(text, { minVersion = 1, mask = -1 } = {}) {
  const { version, codewords: words } = codewords(text, minVersion);
  const sym = new Symbol(version);
  sym.drawFunctionPatterns();
  sym.drawCodewords(words);
  let best = mask;
  if (best < 0) {
    let bestScore = Infinity;
    for (let m = 0; m < 8; m++) {
      sym.applyMask(m);
      sym.drawFormat(m);
      const p = sym.penalty();
      if (p < bestScore) {
        bestScore = p;
        best = m;
      }
      sym.applyMask(m);
    }
  }
  sym.applyMask(best);
  sym.drawFormat(best);
  return { version, size: sym.size, mask: best, dark: sym.dark };
}

// svgPath draws the dark modules as one SVG path, offset by the quiet
// zone (4 modules): each horizontal run of dark modules is one rectangle.
export function svgPath(qr, quiet = 4) {
  const parts = [];
  for (let y = 0; y < qr.size; y++) {
    let x = 0;
    while (x < qr.size) {
      if (!qr.dark[y][x]) {
        x++;
        continue;
      }
      let end = x;
      while (end < qr.size && qr.dark[y][end]) end++;
      parts.push('M' + (x + quiet) + ' ' + (y + quiet) + 'h' + (end - x) + 'v1h-' + (end - x) + 'z');
      x = end;
    }
  }
  return parts.join('');
}
