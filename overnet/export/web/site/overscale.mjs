// Any scale in [1, upscale]: the model's graph ends at its overscaled features and each
// tile's window of the output is finished here, as overnet/runtime/overscale.py does on
// the host: PyTorch's bicubic resize of the features in global coordinates
// (overnet/imaging/bicubic.py), exit1 (a 3x3 convolution), the resized input added.

const f32 = Math.fround;
const A = -0.75;
// input pixels past its own outputs a window reads; least overlap of overscale tiles
export const READ_MARGIN = 3;
export const MIN_OVERLAP = 2 * READ_MARGIN + 2;

/** Source indices (clamped) and float32 weights of output indices [start, stop). */
export function cubicTaps(inSize, outSize, start, stop) {
  const ratio = f32(f32(inSize) / f32(outSize));
  const n = stop - start;
  const indices = new Int32Array(4 * n);
  const weights = new Float32Array(4 * n);
  for (let i = 0; i < n; i += 1) {
    const real = f32(f32(ratio * f32(start + i + 0.5)) - 0.5);
    const floor = Math.floor(real);
    const t = f32(real - floor);
    const u = 1 - t;
    weights[4 * i] = ((A * (t + 1) - 5 * A) * (t + 1) + 8 * A) * (t + 1) - 4 * A;
    weights[4 * i + 1] = ((A + 2) * t - (A + 3)) * t * t + 1;
    weights[4 * i + 2] = ((A + 2) * u - (A + 3)) * u * u + 1;
    weights[4 * i + 3] = ((A * (2 - t) - 5 * A) * (2 - t) + 8 * A) * (2 - t) - 4 * A;
    for (let k = 0; k < 4; k += 1) indices[4 * i + k] = Math.min(Math.max(floor - 1 + k, 0), inSize - 1);
  }
  return { indices, weights };
}

/** Input indices [lo, hi) that output indices [start, stop) read. */
export function neededRange(inSize, outSize, start, stop) {
  const { indices } = cubicTaps(inSize, outSize, start, stop);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of indices) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  return [lo, hi + 1];
}

/**
 * Rows [r0, r1) x cols [c0, c1) of the bicubic resize of an inH x inW image to
 * outH x outW, from x: C x h x w float32 holding the input's rows and cols from origin.
 */
export function resizeWindow(x, channels, h, w, inSize, outSize, origin, rows, cols) {
  const ty = cubicTaps(inSize[0], outSize[0], rows[0], rows[1]);
  const tx = cubicTaps(inSize[1], outSize[1], cols[0], cols[1]);
  const nh = rows[1] - rows[0];
  const nw = cols[1] - cols[0];
  const mid = new Float32Array(channels * nh * w); // rows resized, all columns
  for (let c = 0; c < channels; c += 1) {
    for (let i = 0; i < nh; i += 1) {
      const out = (c * nh + i) * w;
      for (let k = 0; k < 4; k += 1) {
        const src = (c * h + ty.indices[4 * i + k] - origin[0]) * w;
        const wk = ty.weights[4 * i + k];
        for (let j = 0; j < w; j += 1) mid[out + j] += wk * x[src + j];
      }
    }
  }
  const out = new Float32Array(channels * nh * nw);
  for (let r = 0; r < channels * nh; r += 1) {
    for (let j = 0; j < nw; j += 1) {
      let sum = 0;
      for (let k = 0; k < 4; k += 1) sum += tx.weights[4 * j + k] * mid[r * w + tx.indices[4 * j + k] - origin[1]];
      out[r * nw + j] = sum;
    }
  }
  return out;
}

/** exit1 on F x (h+2) x (w+2) zero-padded features -> 3 x h x w float32. */
function conv3x3(x, f, h, w, head) {
  const hp = h + 2;
  const wp = w + 2;
  const out = new Float32Array(3 * h * w);
  for (let o = 0; o < 3; o += 1) {
    const plane = out.subarray(o * h * w, (o + 1) * h * w);
    plane.fill(head.bias[o]);
    for (let c = 0; c < f; c += 1) {
      const src = c * hp * wp;
      for (let ky = 0; ky < 3; ky += 1) {
        for (let kx = 0; kx < 3; kx += 1) {
          const k = head.weight[((o * f + c) * 3 + ky) * 3 + kx];
          for (let y = 0; y < h; y += 1) {
            const row = src + (y + ky) * wp + kx;
            for (let xx = 0; xx < w; xx += 1) plane[y * w + xx] += k * x[row + xx];
          }
        }
      }
    }
  }
  return out;
}

/**
 * Rows x cols of the model's output at the target size (outH x outW), 3 x h x w float32:
 * features F x fh x fw of a part of the image whose top-left input pixel is origin,
 * image 3 x H x W float32 [0, 1] (the whole input).
 */
export function finishWindow(features, fh, fw, origin, image, height, width, head, outSize, rows, cols) {
  const u = head.upscale;
  const f = head.channels;
  const [outH, outW] = outSize;
  const [y0, y1] = rows;
  const [x0, x1] = cols;
  // exit1 reads one resized row/col more on each side: zeros past the image's border
  const ry = [Math.max(y0 - 1, 0), Math.min(y1 + 1, outH)];
  const rx = [Math.max(x0 - 1, 0), Math.min(x1 + 1, outW)];
  const resized = resizeWindow(features, f, fh, fw, [height * u, width * u], outSize, [origin[0] * u, origin[1] * u], ry, rx);
  const h = y1 - y0;
  const w = x1 - x0;
  const padded = new Float32Array(f * (h + 2) * (w + 2));
  const rh = ry[1] - ry[0];
  const rw = rx[1] - rx[0];
  const top = ry[0] - y0 + 1;
  const left = rx[0] - x0 + 1;
  for (let c = 0; c < f; c += 1) {
    for (let y = 0; y < rh; y += 1) {
      const dst = (c * (h + 2) + top + y) * (w + 2) + left;
      padded.set(resized.subarray((c * rh + y) * rw, (c * rh + y + 1) * rw), dst);
    }
  }
  const out = conv3x3(padded, f, h, w, head);
  const [ly0, ly1] = neededRange(height, outH, y0, y1);
  const [lx0, lx1] = neededRange(width, outW, x0, x1);
  const lh = ly1 - ly0;
  const lw = lx1 - lx0;
  const centered = new Float32Array(3 * lh * lw);
  for (let c = 0; c < 3; c += 1) {
    for (let y = 0; y < lh; y += 1) {
      for (let x = 0; x < lw; x += 1) {
        centered[(c * lh + y) * lw + x] = image[(c * height + ly0 + y) * width + lx0 + x] + head.input_shift[c];
      }
    }
  }
  const base = resizeWindow(centered, 3, lh, lw, [height, width], outSize, [ly0, lx0], rows, cols);
  for (let c = 0; c < 3; c += 1) {
    for (let i = 0; i < h * w; i += 1) out[c * h * w + i] = f32(f32(out[c * h * w + i] + base[c * h * w + i]) + head.output_shift[c]);
  }
  return out;
}

/**
 * Per input span [a, b) of one axis: [first, end, blend before, blend after] of the
 * output indices its tile finishes (owned_outputs).
 */
export function ownedOutputs(length, outLength, spans) {
  const ranges = spans.map(([a, b]) => [
    a === 0 ? 0 : Math.ceil(((a + READ_MARGIN) * outLength) / length),
    b === length ? outLength : Math.floor(((b - READ_MARGIN) * outLength) / length),
  ]);
  const owned = new Map();
  spans.forEach((span, i) => {
    const [first, end] = ranges[i];
    const before = i ? ranges[i - 1][1] - first : 0;
    const after = i + 1 < ranges.length ? end - ranges[i + 1][0] : 0;
    if (before < 0 || after < 0 || end <= first) throw new Error(`tiles leave outputs unfinished; overlap >= ${MIN_OVERLAP}`);
    owned.set(span.join(","), [first, end, before, after]);
  });
  return owned;
}
