// Pixel conversions, the alpha plane's bicubic resize and a PNG encoder, each computing
// what overnet's Python path computes (overnet/imaging/pixels.py, overnet/imaging/modes.py,
// Pillow's float32 resize), in the same float32 steps.

const f32 = Math.fround;

/**
 * Decoded samples (HxWxC, C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; values 0..max) -> the
 * network's 3 x H x W float32 planes in [0, 1] (gray repeated) and the alpha plane
 * (H x W float32, or null), as overnet's split_array computes them (to_float: v / max).
 */
export function splitSamples(samples, channels, max, height, width) {
  const plane = height * width;
  const rgb = new Float32Array(3 * plane);
  const hasAlpha = channels === 2 || channels === 4;
  const alpha = hasAlpha ? new Float32Array(plane) : null;
  for (let i = 0; i < plane; i += 1) {
    const o = i * channels;
    if (channels <= 2) {
      const v = samples[o] / max;
      rgb[i] = v;
      rgb[plane + i] = v;
      rgb[2 * plane + i] = v;
    } else {
      rgb[i] = samples[o] / max;
      rgb[plane + i] = samples[o + 1] / max;
      rgb[2 * plane + i] = samples[o + 2] / max;
    }
    if (hasAlpha) alpha[i] = samples[o + channels - 1] / max;
  }
  return { rgb, alpha };
}

/** float (not clipped) -> 0..max: clip to [0, 1], floor(x * max + 0.5) in float32 (from_float). */
export function toSample(value, max) {
  const clipped = value < 0 ? 0 : value > 1 ? 1 : value;
  return Math.floor(f32(f32(clipped * max) + 0.5));
}

/**
 * The stored pixels of an upscaled image: rgb 3 x H' x W' float32 (not clipped), alpha
 * H' x W' float32 [0, 1] or null; gray averages the channels (merge_array). Returns
 * {channels, data}: channels 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA), HxWxC
 * samples in 0..max (Uint16Array for 65535, else Uint8Array).
 */
export function storedPixels(rgb, alpha, height, width, gray, max) {
  const plane = height * width;
  const colour = gray ? 1 : 3;
  const channels = colour + (alpha ? 1 : 0);
  const data = max > 255 ? new Uint16Array(plane * channels) : new Uint8Array(plane * channels);
  for (let i = 0; i < plane; i += 1) {
    const o = i * channels;
    if (gray) {
      data[o] = toSample(f32(f32(f32(rgb[i] + rgb[plane + i]) + rgb[2 * plane + i]) / 3), max);
    } else {
      data[o] = toSample(rgb[i], max);
      data[o + 1] = toSample(rgb[plane + i], max);
      data[o + 2] = toSample(rgb[2 * plane + i], max);
    }
    if (alpha) data[o + colour] = toSample(alpha[i], max);
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
 * Colour layout of a JPEG file from its frame header: {gray, alpha: false} (gray: one
 * component, which Pillow opens as L); null for other formats (decided from the pixels).
 */
export function fileLayout(bytes) {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  let at = 2;
  while (at + 9 < bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    const frame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (frame) return { gray: bytes[at + 9] === 1, alpha: false };
    at += 2 + length;
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
 * A PNG of HxWxC samples (C: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA; Uint8Array: 8-bit,
 * Uint16Array: 16-bit), each row Sub-filtered and zlib-compressed by the browser
 * (CompressionStream "deflate").
 */
export async function encodePng(data, height, width, channels) {
  const colourType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const bytes = data instanceof Uint16Array ? 2 : 1;
  const stride = width * channels * bytes;
  const pixelBytes = channels * bytes;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y += 1) {
    const row = y * (stride + 1);
    raw[row] = 1; // Sub: each byte minus the same byte of the pixel to its left
    const line = raw.subarray(row + 1, row + 1 + stride);
    const src = y * width * channels;
    for (let i = 0; i < width * channels; i += 1) {
      const v = data[src + i];
      if (bytes === 2) {
        line[2 * i] = v >> 8;
        line[2 * i + 1] = v & 0xff;
      } else line[i] = v;
    }
    for (let i = stride - 1; i >= pixelBytes; i -= 1) line[i] = (line[i] - line[i - pixelBytes]) & 0xff;
  }
  const zipped = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer(),
  );
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr.set([8 * bytes, colourType, 0, 0, 0], 8);
  const signature = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const parts = [signature, ...chunk("IHDR", ihdr), ...chunk("IDAT", zipped), ...chunk("IEND", new Uint8Array(0))];
  return new Blob(parts, { type: "image/png" });
}
