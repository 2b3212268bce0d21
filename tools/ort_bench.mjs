// Times ONNX Runtime's CPU execution provider (the onnxruntime-node package)
// on the same model and frames as cbinfer-bench, with the same thread count,
// so that cbinfer's dense CPU baseline can be checked against the runtime a
// user would otherwise pick. Run it through tools/ort_bench.sh, which installs
// the package and reads the model's input scaling.
//
//   node tools/ort_bench.mjs --model M.onnx --frames F.rgb --size WxH
//        [--threads N] [--warmup K] [--scale S] [--offset O] [--json OUT]
//
// F.rgb holds rgb24 frames of WxH (cbinfer-bench --dump-frames writes them);
// each becomes a float32 NCHW tensor value * S + O, as cbinfer maps pixels.
import fs from 'node:fs';
import os from 'node:os';
import {createRequire} from 'node:module';

function usage(msg) {
  process.stderr.write(`ort_bench: ${msg}\n`);
  process.exit(2);
}

const opt = {threads: 0, warmup: 1, scale: 1 / 255, offset: 0, json: null, modules: null};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) usage(`${k} needs a value`);
  switch (k) {
    case '--model': opt.model = v; break;
    case '--frames': opt.frames = v; break;
    case '--size': {
      const m = /^(\d+)x(\d+)$/.exec(v);
      if (!m) usage(`--size WxH, got '${v}'`);
      [opt.w, opt.h] = [Number(m[1]), Number(m[2])];
      break;
    }
    case '--threads': opt.threads = Number(v); break;
    case '--warmup': opt.warmup = Number(v); break;
    case '--scale': opt.scale = Number(v); break;
    case '--offset': opt.offset = Number(v); break;
    case '--json': opt.json = v; break;
    case '--node-modules': opt.modules = v; break;
    default: usage(`unknown flag '${k}'`);
  }
}
if (!opt.model || !opt.frames || !opt.w) usage('--model, --frames and --size are required');
if (!(opt.threads >= 0) || !(opt.warmup >= 0)) usage('--threads and --warmup must be >= 0');

const require = createRequire(opt.modules ? `${opt.modules}/` : import.meta.url);
const ort = require('onnxruntime-node');
const ortVersion = require('onnxruntime-node/package.json').version;

const frameBytes = opt.w * opt.h * 3;
const raw = fs.readFileSync(opt.frames);
const nFrames = Math.floor(raw.length / frameBytes);
if (nFrames <= opt.warmup) usage(`${opt.frames} holds ${nFrames} frames of ${opt.w}x${opt.h}; need more than --warmup ${opt.warmup}`);

const threads = opt.threads > 0 ? opt.threads : os.availableParallelism();
const session = await ort.InferenceSession.create(opt.model, {
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const plane = opt.w * opt.h;

function tensorOf(k) {
  const t = new Float32Array(3 * plane);
  const base = k * frameBytes;
  for (let p = 0; p < plane; p++)
    for (let c = 0; c < 3; c++) t[c * plane + p] = raw[base + p * 3 + c] * opt.scale + opt.offset;
  return new ort.Tensor('float32', t, [1, 3, opt.h, opt.w]);
}

const times = [];
for (let k = 0; k < nFrames; k++) {
  const feeds = {[session.inputNames[0]]: tensorOf(k)};
  const t0 = process.hrtime.bigint();
  await session.run(feeds);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (k >= opt.warmup) times.push(ms);
  if (process.stderr.isTTY) process.stderr.write(`\rort_bench: frame ${k + 1}/${nFrames}`);
}
if (process.stderr.isTTY) process.stderr.write('\n');

const sorted = [...times].sort((a, b) => a - b);
const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const mean = times.reduce((a, b) => a + b, 0) / times.length;
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]
                                 : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
const report = {
  schema: 'cbinfer-ort-bench/1', runtime: `onnxruntime-node ${ortVersion}`, provider: 'cpu',
  model: opt.model, frames_file: opt.frames, size: [opt.w, opt.h], threads,
  warmup: opt.warmup, timed_frames: times.length,
  latency_ms: {min: sorted[0], mean, median, p90: q(0.9), max: sorted[sorted.length - 1]},
  frames_ms: times,
};
console.log(`onnxruntime-node ${ortVersion} cpu, ${threads} threads, ${opt.w}x${opt.h}, ` +
            `${times.length} timed frames: min ${sorted[0].toFixed(1)}  mean ${mean.toFixed(1)}  ` +
            `median ${median.toFixed(1)}  p90 ${q(0.9).toFixed(1)} ms`);
if (opt.json) fs.writeFileSync(opt.json, JSON.stringify(report, null, 1) + '\n');
