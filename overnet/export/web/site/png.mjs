// PNG decoding to the stored sample values (no premultiplied canvas in between, 16-bit
// kept), as overnet's Python path reads them: Pillow's modes for 1/2/4/8-bit and gray
// 16-bit files, full depth for 16-bit RGB(A) (overnet/imaging/png16.py). The browser
// inflates (DecompressionStream); this module walks the chunks and undoes the filters.

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

export function isPng(bytes) {
  return SIGNATURE.every((b, i) => bytes[i] === b);
}

async function inflate(parts) {
  const stream = new Blob(parts).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undo the five PNG row filters of one pass; returns its rows without filter bytes. */
function unfilter(data, at, rows, stride, bpp) {
  const out = new Uint8Array(rows * stride);
  for (let y = 0; y < rows; y += 1) {
    const filter = data[at + y * (stride + 1)];
    const src = at + y * (stride + 1) + 1;
    const row = y * stride;
    const up = row - stride;
    for (let i = 0; i < stride; i += 1) {
      const x = data[src + i];
      const a = i >= bpp ? out[row + i - bpp] : 0;
      const b = y > 0 ? out[up + i] : 0;
      switch (filter) {
        case 0:
          out[row + i] = x;
          break;
        case 1:
          out[row + i] = x + a;
          break;
        case 2:
          out[row + i] = x + b;
          break;
        case 3:
          out[row + i] = x + ((a + b) >> 1);
          break;
        case 4:
          out[row + i] = x + paeth(a, b, y > 0 && i >= bpp ? out[up + i - bpp] : 0);
          break;
        default:
          throw new Error(`bad PNG row filter ${filter}`);
      }
    }
  }
  return out;
}

/**
 * Decode a PNG file (Uint8Array). Returns {width, height, channels, max, samples, gray,
 * alpha}: samples HxWxC (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; palettes expanded to
 * RGB or RGBA), Uint16Array when max is 65535 else Uint8Array (max 255).
 */
export async function decodePng(bytes, maxPixels) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  let header = null;
  let palette = null;
  let transparency = null;
  const idat = [];
  while (at + 12 <= bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (body.length !== length) throw new Error("the PNG file is cut short");
    if (type === "IHDR") {
      const b = new DataView(body.buffer, body.byteOffset, 13);
      header = { width: b.getUint32(0), height: b.getUint32(4), depth: body[8], colourType: body[9], interlace: body[12] };
    } else if (type === "PLTE") palette = body;
    else if (type === "tRNS") transparency = body;
    else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    at += 12 + length;
  }
  if (!header || !idat.length) throw new Error("not a complete PNG file (no IHDR or IDAT)");
  const { width, height, depth, colourType, interlace } = header;
  if (width * height > maxPixels) {
    throw new Error(`${width}x${height} is above this page's limit of ${(maxPixels / 1e6).toFixed(0)} MP`);
  }
  const inChannels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType];
  if (!inChannels) throw new Error(`PNG colour type ${colourType} is not valid`);
  const data = await inflate(idat);
  const bitsPerPixel = inChannels * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3);
  const raw = new Uint32Array(width * height * inChannels); // samples as stored
  const passes = interlace ? ADAM7 : [[0, 0, 1, 1]];
  let offset = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx);
    const ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const stride = Math.ceil((pw * bitsPerPixel) / 8);
    if (offset + ph * (stride + 1) > data.length) throw new Error("the PNG image data is cut short");
    const rows = unfilter(data, offset, ph, stride, bpp);
    offset += ph * (stride + 1);
    for (let y = 0; y < ph; y += 1) {
      for (let x = 0; x < pw; x += 1) {
        const target = ((y0 + y * dy) * width + x0 + x * dx) * inChannels;
        for (let c = 0; c < inChannels; c += 1) {
          const index = x * inChannels + c;
          let value;
          if (depth === 16) value = (rows[y * stride + 2 * index] << 8) | rows[y * stride + 2 * index + 1];
          else if (depth === 8) value = rows[y * stride + index];
          else {
            const bit = index * depth;
            value = (rows[y * stride + (bit >> 3)] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
          }
          raw[target + c] = value;
        }
      }
    }
  }
  return expand(raw, { width, height, depth, colourType, palette, transparency });
}

/** Stored samples -> the samples Pillow's mode of the file holds (see decodePng). */
function expand(raw, { width, height, depth, colourType, palette, transparency }) {
  const pixels = width * height;
  if (colourType === 3) {
    if (!palette) throw new Error("palette PNG without a PLTE chunk");
    const alpha = transparency !== null;
    const channels = alpha ? 4 : 3;
    const samples = new Uint8Array(pixels * channels);
    for (let i = 0; i < pixels; i += 1) {
      const entry = raw[i];
      for (let c = 0; c < 3; c += 1) samples[i * channels + c] = palette[3 * entry + c] ?? 0;
      if (alpha) samples[i * channels + 3] = entry < transparency.length ? transparency[entry] : 255;
    }
    return { width, height, channels, max: 255, samples, gray: false, alpha };
  }
  const channels = { 0: 1, 2: 3, 4: 2, 6: 4 }[colourType];
  const gray = channels <= 2;
  const alpha = channels === 2 || channels === 4;
  // 16-bit gray+alpha: Pillow reads LA (8-bit), the high byte of each sample
  const wide = depth === 16 && colourType !== 4;
  const samples = wide ? new Uint16Array(pixels * channels) : new Uint8Array(pixels * channels);
  // 1/2/4-bit gray: Pillow's L scales each level to 0..255
  const scale = depth < 8 ? 255 / ((1 << depth) - 1) : 1;
  for (let i = 0; i < raw.length; i += 1) {
    samples[i] = depth === 16 && !wide ? raw[i] >> 8 : raw[i] * scale;
  }
  return { width, height, channels, max: wide ? 65535 : 255, samples, gray, alpha };
}
