// Pixel conversions, the alpha plane's bicubic resize and a PNG encoder, each computing
// what overnet's Python path computes (overnet/imaging/pixels.py, overnet/imaging/modes.py,
// Pillow's float32 resize), in the same float32 steps.

const f32 = Math.fround;

/** RGBA uint8 (HxWx4) -> 3 x H x W float32 planes in [0, 1] (to_float: v / 255). */
export function rgbPlanes(rgba, height, width) {
  const plane = height * width;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i += 1) {
    out[i] = rgba[4 * i] / 255;
    out[plane + i] = rgba[4 * i + 1] / 255;
    out[2 * plane + i] = rgba[4 * i + 2] / 255;
  }
  return out;
}

/** The alpha channel of RGBA uint8 as an H x W float32 plane in [0, 1]. */
export function alphaPlane(rgba, height, width) {
  const out = new Float32Array(height * width);
  for (let i = 0; i < out.length; i += 1) out[i] = rgba[4 * i + 3] / 255;
  return out;
}

/** float (not clipped) -> uint8: clip to [0, 1], floor(x * 255 + 0.5) in float32 (from_float). */
export function toByte(value) {
  const clipped = value < 0 ? 0 : value > 1 ? 1 : value;
  return Math.floor(f32(f32(clipped * 255) + 0.5));
}

/**
 * The stored pixels of an upscaled image: rgb 3 x H' x W' float32 (not clipped), alpha
 * H' x W' float32 [0, 1] or null; gray averages the channels (merge_array). Returns
 * {channels, data}: channels 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), uint8 HxWxC.
 */
export function storedPixels(rgb, alpha, height, width, gray) {
  const plane = height * width;
  const colour = gray ? 1 : 3;
  const channels = colour + (alpha ? 1 : 0);
  const data = new Uint8Array(plane * channels);
  for (let i = 0; i < plane; i += 1) {
    const o = i * channels;
    if (gray) {
      data[o] = toByte(f32(f32(f32(rgb[i] + rgb[plane + i]) + rgb[2 * plane + i]) / 3));
    } else {
      data[o] = toByte(rgb[i]);
      data[o + 1] = toByte(rgb[plane + i]);
      data[o + 2] = toByte(rgb[2 * plane + i]);
    }
    if (alpha) data[o + colour] = toByte(alpha[i]);
  }
  return { channels, data };
}

// -- Pillow's resize of a float32 ("F") image with Resampling.BICUBIC ------------------

function bicubic(x) {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Per output sample: [first input sample, taps, normalised double weights]. */
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 2 * filterscale;
  const out = [];
  for (let xx = 0; xx < outSize; xx += 1) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const weights = new Float64Array(Math.max(xmax, 0));
    const ss = 1 / filterscale;
    let sum = 0;
    for (let x = 0; x < xmax; x += 1) {
      weights[x] = bicubic((x + xmin - center + 0.5) * ss);
      sum += weights[x];
    }
    if (sum !== 0) for (let x = 0; x < xmax; x += 1) weights[x] /= sum;
    out.push([xmin, xmax, weights]);
  }
  return out;
}

/**
 * Bicubic resize of an H x W float32 plane to outH x outW, clipped to [0, 1]: Pillow's
 * two passes (horizontal into float32 rows, then vertical) with double accumulators, as
 * overnet resizes alpha (runtime/upscaler.py _resize_plane).
 */
export function resizePlane(plane, height, width, outH, outW) {
  const horiz = coefficients(width, outW);
  const vert = coefficients(height, outH);
  const first = vert[0][0];
  const last = vert[outH - 1][0] + vert[outH - 1][1];
  const rows = last - first;
  let temp = plane;
  let offset = 0;
  if (width !== outW) {
    temp = new Float32Array(rows * outW);
    for (let y = 0; y < rows; y += 1) {
      const src = (y + first) * width;
      for (let xx = 0; xx < outW; xx += 1) {
        const [xmin, taps, k] = horiz[xx];
        let ss = 0;
        for (let x = 0; x < taps; x += 1) ss += plane[src + x + xmin] * k[x];
        temp[y * outW + xx] = ss;
      }
    }
    offset = first;
  }
  const out = new Float32Array(outH * outW);
  if (height === outH && width === outW) out.set(plane);
  else if (height === outH) out.set(temp.subarray(0, outH * outW));
  else {
    for (let yy = 0; yy < outH; yy += 1) {
      const [ymin, taps, k] = vert[yy];
      for (let xx = 0; xx < outW; xx += 1) {
        let ss = 0;
        for (let y = 0; y < taps; y += 1) ss += temp[(y + ymin - offset) * outW + xx] * k[y];
        out[yy * outW + xx] = ss;
      }
    }
  }
  for (let i = 0; i < out.length; i += 1) out[i] = out[i] < 0 ? 0 : out[i] > 1 ? 1 : out[i];
  return out;
}

// -- what the input file holds ----------------------------------------------------------

/**
 * Colour layout of a PNG or JPEG file from its header: {gray, alpha} as Pillow opens it
 * (gray: L/LA/1 modes; alpha: LA, RGBA, or a palette with transparency). Other formats:
 * null (decided from the decoded pixels).
 */
export function fileLayout(bytes) {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (png.every((b, i) => bytes[i] === b)) {
    const colourType = bytes[25];
    let transparency = false;
    let at = 8;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    while (at + 8 <= bytes.length) {
      const length = view.getUint32(at);
      const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
      if (type === "IDAT" || type === "IEND") break;
      if (type === "tRNS") transparency = true;
      at += 12 + length;
    }
    return {
      gray: colourType === 0 || colourType === 4,
      alpha: colourType === 4 || colourType === 6 || (colourType === 3 && transparency),
    };
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 < bytes.length && bytes[at] === 0xff) {
      const marker = bytes[at + 1];
      const length = (bytes[at + 2] << 8) | bytes[at + 3];
      const sof = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
      if (sof) return { gray: bytes[at + 9] === 1, alpha: false };
      at += 2 + length;
    }
  }
  return null;
}

// -- PNG encoding -----------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(parts) {
  let c = 0xffffffff;
  for (const part of parts) {
    for (let i = 0; i < part.length; i += 1) c = CRC_TABLE[(c ^ part[i]) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, body) {
  const head = new Uint8Array(8);
  const view = new DataView(head.buffer);
  view.setUint32(0, body.length);
  const name = new TextEncoder().encode(type);
  head.set(name, 4);
  const tail = new Uint8Array(4);
  new DataView(tail.buffer).setUint32(0, crc32([name, body]));
  return [head, body, tail];
}

/**
 * An 8-bit PNG of HxWxC uint8 pixels (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), each row
 * Sub-filtered and zlib-compressed by the browser (CompressionStream "deflate").
 */
export async function encodePng(data, height, width, channels) {
  const colourType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const stride = width * channels;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y += 1) {
    const row = y * (stride + 1);
    raw[row] = 1; // Sub: each byte minus the one a pixel to its left
    const src = y * stride;
    for (let i = 0; i < stride; i += 1) {
      const left = i >= channels ? data[src + i - channels] : 0;
      raw[row + 1 + i] = (data[src + i] - left) & 0xff;
    }
  }
  const zipped = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer(),
  );
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8, colourType, 0, 0, 0], 8);
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const parts = [signature, ...chunk("IHDR", ihdr), ...chunk("IDAT", zipped), ...chunk("IEND", new Uint8Array(0))];
  return new Blob(parts, { type: "image/png" });
}
