// The Open Inference Protocol's gRPC door (package inference), from Node.
//
// A client that @grpc/proto-loader makes at run time from the project's
// proto/inference/open_inference_grpc.proto, calling over @grpc/grpc-js (the npm registry's
// packages, pinned by package-lock.json), against the real `actserve` binary on a free
// loopback port: the health and metadata calls, ModelInfer in every datatype against
// PyTorch, the typed contents, every class of bad request and the engine's limits (status
// code, a message naming the field, and the server still serving after it), bearer tokens,
// the Prometheus counters, and ServerReady turning false while the server drains. Where the
// specification leaves a choice, the test expects what Triton does.
//
// PyTorch's numbers come from ../python/grpc_torch_cases.py, which this test runs with
// ACTSERVE_PYTHON and whose JSON holds each case's inputs (exact in the datatype) and
// expected results; this client encodes the inputs and decodes the replies itself.
//
//   ctest --preset release -R inference_grpc_node     (runs `npm ci` first: the fixture)
//   ACTSERVE_BINARY=build/release/server/actserve ACTSERVE_VERSION=0.1.0 \
//     NODE_PATH=build/release/tests/inference/node/node_modules node --test grpc_door.test.js
'use strict';

const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', '..', 'proto');
const CASES_SCRIPT = path.resolve(__dirname, '..', 'python', 'grpc_torch_cases.py');
const CALL_TIMEOUT_MS = 60000;  // generous: the machine may be busy compiling
const START_LIMIT_MS = 60000;
const STOP_LIMIT_MS = 30000;
const POLL_MS = 50;
// The door on its own (the REST door has its own tests): no HTTP port, no metrics port, so
// that parallel tests never contend for one. No drain delay: stopping takes no longer than
// the calls (extra flags come after these, and absl's last value wins).
const SERVER_FLAGS = ['--address=127.0.0.1:0', '--threads=2', '--metrics_address=',
  '--http_address=', '--shutdown_grace=2s', '--drain_delay=0s'];

// The engine's limits, small enough to reach (every case is far below them).
const MAX_ELEMENTS = 4096;
const MAX_RANK = 4;

const LOADER_OPTIONS = {
  keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
  includeDirs: [PROTO_ROOT],
};
const inference = grpc.loadPackageDefinition(
  protoLoader.loadSync('inference/open_inference_grpc.proto', LOADER_OPTIONS)).inference;
// actserve.v1, only for its catalogue: the models the door must know.
const actserveV1 = grpc.loadPackageDefinition(
  protoLoader.loadSync('actserve/v1/activation.proto', LOADER_OPTIONS)).actserve.v1;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function requiredEnv(name) {
  const value = process.env[name];
  assert.ok(value, `set ${name} (ctest does)`);
  return value;
}

// ---- The server process ------------------------------------------------------------------

// One actserve process: listens on a port the kernel picks, which it logs as "(port N";
// start() waits for that line, then polls ServerLive; stop() sends SIGTERM (the server
// drains and exits 0) and returns the exit code.
class ServerProcess {
  constructor(...extraFlags) {
    this.flags = [...SERVER_FLAGS, ...extraFlags];
    this.log = '';
    this.exit = null;
  }

  async start() {
    this.process = spawn(requiredEnv('ACTSERVE_BINARY'), this.flags,
      { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => {
      this.process.on('exit', (code, signal) => {
        this.exit = code ?? `signal ${signal}`;
        resolve(this.exit);
      });
      this.process.on('error', (error) => {  // could not be started at all
        this.exit = error.message;
        resolve(this.exit);
      });
    });
    const deadline = Date.now() + START_LIMIT_MS;
    let port = null;
    const append = (chunk) => {
      this.log += chunk.toString();
      const match = /\(port (\d+)/.exec(this.log);
      if (match && port === null) port = Number(match[1]);
    };
    this.process.stdout.on('data', append);
    this.process.stderr.on('data', append);
    while (port === null) {
      this.checkAliveBefore(deadline, 'log its port');
      await sleep(POLL_MS);
    }
    this.target = `127.0.0.1:${port}`;
    this.client = new inference.GRPCInferenceService(this.target,
      grpc.credentials.createInsecure());
    for (;;) {
      try {
        if ((await call(this.client, 'ServerLive', {})).live) return this;
      } catch (error) {
        // Not serving yet.
      }
      this.checkAliveBefore(deadline, 'answer ServerLive');
      await sleep(POLL_MS);
    }
  }

  checkAliveBefore(deadline, what) {
    if (this.exit !== null) {
      throw new Error(`actserve exited (${this.exit}) before it could ${what}; its log:\n${this.log}`);
    }
    if (Date.now() > deadline) {
      this.process.kill('SIGKILL');
      throw new Error(`actserve did not ${what} in ${START_LIMIT_MS} ms; its log:\n${this.log}`);
    }
  }

  signal(name) {
    this.process.kill(name);
  }

  async stop() {
    if (this.client) this.client.close();
    if (this.exit === null) {
      this.process.kill('SIGTERM');
      const timer = setTimeout(() => this.process.kill('SIGKILL'), STOP_LIMIT_MS);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exit;
  }
}

// ---- Calls -------------------------------------------------------------------------------

function call(client, method, request, metadata = new grpc.Metadata()) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline: Date.now() + CALL_TIMEOUT_MS },
      (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

function bearer(token) {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

// `promise` fails with `code` and a message holding every fragment. Returns the message.
async function expectRpcError(promise, code, fragments = []) {
  let error = null;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, `the call succeeded; expected ${grpc.status[code]}`);
  const message = error.details ?? '';
  assert.equal(error.code, code,
    `status ${grpc.status[error.code]} (${message}); expected ${grpc.status[code]}`);
  for (const fragment of fragments) {
    assert.ok(message.includes(fragment), `the message ${JSON.stringify(message)} must name ${JSON.stringify(fragment)}`);
  }
  return message;
}

// ---- Wire encoding, this client's own: little-endian, row-major, no padding --------------

const ELEMENT_BYTES = { FP32: 4, FP64: 8, FP16: 2, BF16: 2 };

// The IEEE binary16 bits of `value`, which must be exact in binary16.
function float16Bits(value) {
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(value);
  if (magnitude === 0) return sign;
  if (magnitude < 2 ** -14) {  // subnormal: a multiple of 2^-24
    const mantissa = magnitude / 2 ** -24;
    assert.ok(Number.isInteger(mantissa), `${value} is not a float16`);
    return sign | mantissa;
  }
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent -= 1;
  if (2 ** (exponent + 1) <= magnitude) exponent += 1;
  const mantissa = (magnitude / 2 ** exponent - 1) * 1024;
  assert.ok(Number.isInteger(mantissa) && exponent <= 15, `${value} is not a float16`);
  return sign | ((exponent + 15) << 10) | mantissa;
}

function float16Value(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function encode(values, datatype) {
  const bytes = Buffer.alloc(values.length * ELEMENT_BYTES[datatype]);
  const scratch = Buffer.alloc(4);
  values.forEach((value, i) => {
    switch (datatype) {
      case 'FP32': bytes.writeFloatLE(value, 4 * i); break;
      case 'FP64': bytes.writeDoubleLE(value, 8 * i); break;
      case 'FP16': bytes.writeUInt16LE(float16Bits(value), 2 * i); break;
      case 'BF16':  // the upper half of the float32 of the same value
        scratch.writeFloatLE(value, 0);
        assert.equal(scratch.readUInt16LE(0), 0, `${value} is not a bfloat16`);
        bytes.writeUInt16LE(scratch.readUInt16LE(2), 2 * i);
        break;
      default: throw new Error(`no encoding for ${datatype}`);
    }
  });
  return bytes;
}

// Exact results: -0 and 0 are the same number here (relu(-0) may give either).
function assertValues(raw, datatype, expected) {
  assert.deepEqual(decode(raw, datatype).map((value) => value + 0), expected);
}

function decode(bytes, datatype) {
  const count = bytes.length / ELEMENT_BYTES[datatype];
  const values = [];
  const scratch = Buffer.alloc(4);
  for (let i = 0; i < count; i += 1) {
    switch (datatype) {
      case 'FP32': values.push(bytes.readFloatLE(4 * i)); break;
      case 'FP64': values.push(bytes.readDoubleLE(8 * i)); break;
      case 'FP16': values.push(float16Value(bytes.readUInt16LE(2 * i))); break;
      case 'BF16':
        scratch.writeUInt16LE(0, 0);
        scratch.writeUInt16LE(bytes.readUInt16LE(2 * i), 2);
        values.push(scratch.readFloatLE(0));
        break;
      default: throw new Error(`no decoding for ${datatype}`);
    }
  }
  return values;
}

// ---- Requests ----------------------------------------------------------------------------

function reluRequest(values = [-1.5, 2.0], id = '') {
  return {
    model_name: 'relu', id,
    inputs: [{ name: 'x', datatype: 'FP32', shape: [values.length] }],
    outputs: [{ name: 'y' }],
    raw_input_contents: [encode(values, 'FP32')],
  };
}

// A case of grpc_torch_cases.py in `datatype`: raw contents, or with `typed` fp32/fp64.
function caseRequest(testCase, datatype, id, typed = false) {
  const inputs = testCase.datatypes[datatype].inputs;
  const request = {
    model_name: testCase.model, id, parameters: testCase.parameters, inputs: [],
    outputs: testCase.requested_outputs.map((name) => ({ name })), raw_input_contents: [],
  };
  for (const name of testCase.input_order) {
    const input = { name, datatype, shape: inputs[name].shape };
    if (typed) {
      input.contents = { [datatype === 'FP32' ? 'fp32_contents' : 'fp64_contents']: inputs[name].values };
    } else {
      request.raw_input_contents.push(encode(inputs[name].values, datatype));
    }
    request.inputs.push(input);
  }
  return request;
}

function checkReply(testCase, datatype, reply, id, tolerances) {
  const label = `${testCase.name} ${datatype}`;
  assert.equal(reply.model_name, testCase.model, label);
  assert.equal(reply.model_version, '1', label);
  assert.equal(reply.id, id, label);
  assert.deepEqual(reply.outputs.map((output) => output.name), testCase.reply_outputs, label);
  assert.equal(reply.raw_output_contents.length, reply.outputs.length, label);
  const { rtol, atol } = tolerances[datatype];
  reply.outputs.forEach((output, index) => {
    const want = testCase.datatypes[datatype].outputs[output.name];
    const where = `${label} ${output.name}`;
    assert.equal(output.datatype, datatype, where);
    assert.deepEqual(output.shape, want.shape, where);
    const raw = reply.raw_output_contents[index];
    assert.equal(raw.length, want.expected.length * ELEMENT_BYTES[datatype], where);
    const got = decode(raw, datatype);
    got.forEach((value, i) => {
      const bound = rtol * want.scale[i] + atol;
      assert.ok(Math.abs(value - want.expected[i]) <= bound,
        `${where}[${i}]: got ${value}, PyTorch ${want.expected[i]} (bound ${bound})`);
    });
  });
}

// ---- The tests ---------------------------------------------------------------------------

let server;
let client;
let oracle;

before(async () => {
  const python = process.env.ACTSERVE_PYTHON || '/usr/bin/python3';
  oracle = JSON.parse(execFileSync(python, [CASES_SCRIPT], {
    maxBuffer: 64 << 20, env: { ...process.env, OMP_NUM_THREADS: '1' },
  }).toString());
  server = await new ServerProcess(`--max_elements=${MAX_ELEMENTS}`, `--max_rank=${MAX_RANK}`).start();
  client = server.client;
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, `actserve's log:\n${server.log}`);
});

async function assertStillServing() {
  assert.equal((await call(client, 'ServerLive', {})).live, true);
  const reply = await call(client, 'ModelInfer', reluRequest([-1.5, 2.0, -0.0, 3.25]));
  assertValues(reply.raw_output_contents[0], 'FP32', [0, 2, 0, 3.25]);
}

async function catalogue() {
  const v1 = new actserveV1.ActivationService(server.target, grpc.credentials.createInsecure());
  try {
    const reply = await call(v1, 'ListActivations', {});
    return reply.activations.map((activation) => activation.name);
  } finally {
    v1.close();
  }
}

describe('health and metadata', () => {
  test('ServerLive and ServerReady', async () => {
    assert.equal((await call(client, 'ServerLive', {})).live, true);
    assert.equal((await call(client, 'ServerReady', {})).ready, true);
  });

  test('ServerMetadata names actserve, its version and its extensions', async () => {
    const reply = await call(client, 'ServerMetadata', {});
    assert.equal(reply.name, 'actserve');
    assert.equal(reply.version, requiredEnv('ACTSERVE_VERSION'));
    assert.equal(new Set(reply.extensions).size, reply.extensions.length, reply.extensions.join());
    for (const extension of reply.extensions) assert.match(extension, /^\S+$/);
  });

  test('every activation is a ready model, with version "" or "1"', async () => {
    const names = await catalogue();
    assert.ok(names.length >= 20, names.join());
    for (const name of names) {
      for (const version of ['', '1']) {
        const reply = await call(client, 'ModelReady', { name, version });
        assert.equal(reply.ready, true, `${name} version "${version}"`);
      }
    }
  });

  test('ModelReady of an unknown model or version is NOT_FOUND', async () => {
    await expectRpcError(call(client, 'ModelReady', { name: 'no_such_model' }),
      grpc.status.NOT_FOUND, ['no_such_model']);
    await assertStillServing();
    const message = await expectRpcError(call(client, 'ModelReady', { name: 'relu', version: '7' }),
      grpc.status.NOT_FOUND, ['7']);
    assert.match(message, /version/i);
    await assertStillServing();
  });

  test('ModelMetadata of every model', async () => {
    for (const name of await catalogue()) {
      const reply = await call(client, 'ModelMetadata', { name });
      assert.equal(reply.name, name);
      assert.deepEqual(reply.versions, ['1'], name);
      assert.equal(reply.platform, 'actserve', name);
      const inputs = reply.inputs.map((tensor) => tensor.name);
      const outputs = reply.outputs.map((tensor) => tensor.name);
      const prelu = name === 'prelu';
      assert.deepEqual([...inputs].sort(), (prelu ? ['dy', 'weight', 'x'] : ['dy', 'x']), name);
      assert.equal(inputs[0], 'x', name);
      assert.deepEqual(outputs, prelu ? ['y', 'dx', 'dweight'] : ['y', 'dx'], name);
      for (const tensor of [...reply.inputs, ...reply.outputs]) {
        assert.equal(tensor.datatype, 'FP32', `${name} ${tensor.name}`);
        assert.deepEqual(tensor.shape, [-1], `${name} ${tensor.name}`);
      }
    }
  });

  test('ModelMetadata of an unknown model or version is NOT_FOUND', async () => {
    await expectRpcError(call(client, 'ModelMetadata', { name: 'swishy' }),
      grpc.status.NOT_FOUND, ['swishy']);
    await assertStillServing();
    const message = await expectRpcError(call(client, 'ModelMetadata', { name: 'gelu', version: '2' }),
      grpc.status.NOT_FOUND, ['2']);
    assert.match(message, /version/i);
    await assertStillServing();
  });
});

describe('ModelInfer against PyTorch', () => {
  test('raw contents, every case in every datatype', async (t) => {
    for (const testCase of oracle.cases) {
      for (const datatype of Object.keys(testCase.datatypes)) {
        await t.test(`${testCase.name}, ${datatype}`, async () => {
          const id = `node ${testCase.name} / ${datatype}`;
          const reply = await call(client, 'ModelInfer', caseRequest(testCase, datatype, id));
          checkReply(testCase, datatype, reply, id, oracle.tolerances);
        });
      }
    }
  });

  test('typed fp32_contents and fp64_contents', async (t) => {
    for (const name of ['gelu approximate=tanh, y and dx',
      'prelu weight input, every output, inputs out of order',
      'leaky_relu negative_slope int, dx before y']) {
      const testCase = oracle.cases.find((c) => c.name === name);
      assert.ok(testCase, name);
      for (const datatype of ['FP32', 'FP64']) {
        await t.test(`${name}, ${datatype}`, async () => {
          const reply = await call(client, 'ModelInfer', caseRequest(testCase, datatype, 'typed', true));
          checkReply(testCase, datatype, reply, 'typed', oracle.tolerances);
        });
      }
    }
  });

  test('concurrent calls each get their own reply', async () => {
    // Every case in every datatype at once, on one channel: each reply matches its id.
    const calls = [];
    for (const testCase of oracle.cases) {
      for (const datatype of Object.keys(testCase.datatypes)) {
        const id = `concurrent ${testCase.name} / ${datatype}`;
        calls.push(call(client, 'ModelInfer', caseRequest(testCase, datatype, id))
          .then((reply) => checkReply(testCase, datatype, reply, id, oracle.tolerances)));
      }
    }
    await Promise.all(calls);
  });

  test('without an id the reply has none', async () => {
    assert.equal((await call(client, 'ModelInfer', reluRequest())).id, '');
  });

  test('version "1" and the reserved parameters timeout and priority', async () => {
    const request = reluRequest([-2.0, 0.5], 'reserved');
    request.model_version = '1';
    request.parameters = { timeout: { int64_param: 30000000 }, priority: { int64_param: 1 } };
    const reply = await call(client, 'ModelInfer', request);
    assert.equal(reply.id, 'reserved');
    assertValues(reply.raw_output_contents[0], 'FP32', [0, 0.5]);
  });

  test('timeout 0 is no timeout, as in Triton', async () => {
    // Triton's request timeout: "The default is 0 which indicates that the request has no
    // timeout" (tritonserver.h, TRITONSERVER_InferenceRequestSetTimeoutMicroseconds).
    const request = reluRequest([-2.0, 0.5], 'timeout 0');
    request.parameters = { timeout: { int64_param: 0 } };
    const reply = await call(client, 'ModelInfer', request);
    assertValues(reply.raw_output_contents[0], 'FP32', [0, 0.5]);
  });
});

describe('bad requests: status, a message naming the field, and the server serves on', () => {
  const { INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED } = grpc.status;
  const withModel = (model, parameters) => ({ ...reluRequest(), model_name: model, parameters });
  const x2 = () => ({ name: 'x', datatype: 'FP32', shape: [2] });
  // [what, request, code, fragments the message holds, a pattern it matches, fragments it
  // must not hold]
  const badRequests = [
    ['unknown model', { ...reluRequest(), model_name: 'no_such_model' }, NOT_FOUND, ['no_such_model']],
    ['unknown version', { ...reluRequest(), model_version: '7' }, NOT_FOUND, ['7'], /version/i],
    ['unknown input name', {
      ...reluRequest([1, 2]),
      inputs: [x2(), { name: 'z', datatype: 'FP32', shape: [2] }],
      raw_input_contents: [encode([1, 2], 'FP32'), encode([1, 2], 'FP32')],
    }, INVALID_ARGUMENT, ['inputs[1].name']],
    ['repeated input', {
      ...reluRequest([1, 2]),
      inputs: [x2(), x2()],
      raw_input_contents: [encode([1, 2], 'FP32'), encode([1, 2], 'FP32')],
    }, INVALID_ARGUMENT, ['inputs[1]']],
    ['missing x', {
      model_name: 'relu', inputs: [{ name: 'dy', datatype: 'FP32', shape: [2] }],
      raw_input_contents: [encode([1, 1], 'FP32')],
    }, INVALID_ARGUMENT, ['inputs'], /\bx\b/],
    ['no input at all', { model_name: 'relu' }, INVALID_ARGUMENT, ['inputs'], /\bx\b/],
    ['unknown output', { ...reluRequest(), outputs: [{ name: 'z' }] }, INVALID_ARGUMENT,
      ['outputs[0].name']],
    ['repeated output', { ...reluRequest(), outputs: [{ name: 'y' }, { name: 'y' }] },
      INVALID_ARGUMENT, ['outputs[1]']],
    ['dweight of a model without weight', { ...reluRequest(), outputs: [{ name: 'dweight' }] },
      INVALID_ARGUMENT, ['outputs[0].name']],
    ['datatype of dy differs from x', {
      ...reluRequest([1, 2]),
      inputs: [x2(), { name: 'dy', datatype: 'FP64', shape: [2] }],
      raw_input_contents: [encode([1, 2], 'FP32'), encode([1, 1], 'FP64')],
    }, INVALID_ARGUMENT, ['inputs[1].datatype']],
    // Whatever the pass: a forward pass (y alone) does not read dy, but a request with a
    // malformed input is malformed all the same.
    ...[[{ name: 'y' }], [{ name: 'dx' }], []].map((outputs) => [
      `shape of dy differs from x, outputs [${outputs.map((o) => o.name)}]`, {
        ...reluRequest([1, 2]),
        inputs: [x2(), { name: 'dy', datatype: 'FP32', shape: [1, 2] }],
        outputs,
        raw_input_contents: [encode([1, 2], 'FP32'), encode([1, 1], 'FP32')],
      }, INVALID_ARGUMENT, ['inputs[1]']]),
    ['datatype INT32', {
      model_name: 'relu', inputs: [{ name: 'x', datatype: 'INT32', shape: [2] }],
      raw_input_contents: [Buffer.from([1, 0, 0, 0, 2, 0, 0, 0])],
    }, INVALID_ARGUMENT, ['inputs[0].datatype']],
    ['datatype BYTES', {
      model_name: 'relu', inputs: [{ name: 'x', datatype: 'BYTES', shape: [1] }],
      raw_input_contents: [Buffer.from([1, 0, 0, 0, 65])],
    }, INVALID_ARGUMENT, ['inputs[0].datatype']],
    ['contents and raw contents both given', {
      ...reluRequest([1, 2]),
      inputs: [{ ...x2(), contents: { fp32_contents: [1, 2] } }],
    }, INVALID_ARGUMENT, ['contents']],
    ['typed contents of another datatype', {
      model_name: 'relu', inputs: [{ ...x2(), contents: { fp64_contents: [1, 2] } }],
    }, INVALID_ARGUMENT, ['inputs[0]']],
    ['raw byte count differs from the shape', {
      model_name: 'relu', inputs: [x2()], raw_input_contents: [Buffer.alloc(7)],
    }, INVALID_ARGUMENT, [], /raw_input_contents\[0\]|inputs\[0\]/],
    ['typed element count differs from the shape', {
      model_name: 'relu',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [3], contents: { fp32_contents: [1, 2] } }],
    }, INVALID_ARGUMENT, ['inputs[0]']],
    ['fewer raw contents than inputs', {
      ...reluRequest([1, 2]),
      inputs: [x2(), { name: 'dy', datatype: 'FP32', shape: [2] }],
    }, INVALID_ARGUMENT, ['raw_input_contents']],
    ['negative dimension', {
      model_name: 'relu', inputs: [{ name: 'x', datatype: 'FP32', shape: [-2] }],
      raw_input_contents: [Buffer.alloc(0)],
    }, INVALID_ARGUMENT, ['inputs[0].shape']],
    ['negative_slope as a string', withModel('leaky_relu', { negative_slope: { string_param: '0.2' } }),
      INVALID_ARGUMENT, ['negative_slope']],
    ['approximate as an integer', withModel('gelu', { approximate: { int64_param: 1 } }),
      INVALID_ARGUMENT, ['approximate']],
    ['dim as a double', withModel('softmax', { dim: { double_param: 1.5 } }),
      INVALID_ARGUMENT, ['dim']],
    ['softplus beta = 0', withModel('softplus', { beta: { double_param: 0 } }),
      INVALID_ARGUMENT, ['softplus: beta must be nonzero, got 0']],
    ['gelu approximate = fast', withModel('gelu', { approximate: { string_param: 'fast' } }),
      INVALID_ARGUMENT, ['gelu: approximate must be one of none, tanh']],
    ['softshrink lambd < 0', withModel('softshrink', { lambd: { double_param: -0.5 } }),
      INVALID_ARGUMENT, ['softshrink: lambd must be >= 0, got -0.5']],
    ['reserved parameter timeout as a string', withModel('relu', { timeout: { string_param: '1s' } }),
      INVALID_ARGUMENT, ['parameters.timeout']],
    ['reserved parameter timeout < 0', withModel('relu', { timeout: { int64_param: -1 } }),
      INVALID_ARGUMENT, ['parameters.timeout']],
    ['unknown parameter', withModel('relu', { alpha: { double_param: 1 } }),
      INVALID_ARGUMENT, ['alpha']],
    // The engine's limits, in the door's words: no actserve.v1 field (items[...]).
    ['more elements than the limit', reluRequest(new Array(MAX_ELEMENTS + 1).fill(0)),
      RESOURCE_EXHAUSTED, [String(MAX_ELEMENTS)], null, ['items[']],
    ['more dimensions than the limit', {
      model_name: 'relu',
      inputs: [{ name: 'x', datatype: 'FP32', shape: new Array(MAX_RANK + 1).fill(1) }],
      raw_input_contents: [encode([1], 'FP32')],
    }, RESOURCE_EXHAUSTED, ['inputs[0].shape']],
  ];

  for (const [what, request, code, fragments, pattern, absent = []] of badRequests) {
    test(what, async () => {
      const message = await expectRpcError(call(client, 'ModelInfer', request), code, fragments);
      if (pattern) assert.match(message, pattern);
      for (const fragment of absent) assert.ok(!message.includes(fragment), message);
      await assertStillServing();
    });
  }

  test('prelu weight of the wrong size', async () => {
    const testCase = oracle.cases.find((c) => c.name === 'prelu forward with weight');
    const request = caseRequest(testCase, 'FP32', '');  // x [4, 2]: 2 channels
    request.inputs.find((input) => input.name === 'weight').shape = [3];
    request.raw_input_contents[testCase.input_order.indexOf('weight')] = encode([0.25, 0.5, 0.75], 'FP32');
    await expectRpcError(call(client, 'ModelInfer', request), INVALID_ARGUMENT, ['weight']);
    await assertStillServing();
  });

  test('prelu weight as input and as parameter', async () => {
    const testCase = oracle.cases.find((c) => c.name === 'prelu forward with weight');
    const request = caseRequest(testCase, 'FP32', '');
    request.parameters = { weight: { double_param: 0.25 } };
    await expectRpcError(call(client, 'ModelInfer', request), INVALID_ARGUMENT, ['weight']);
    await assertStillServing();
  });
});

describe('a server with --auth_token_file', () => {
  test('ModelInfer and the metadata need the token, the probes do not', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'actserve-oip-node-'));
    const tokens = path.join(directory, 'tokens');
    fs.writeFileSync(tokens, 'node-oip-token\n');
    const secured = await new ServerProcess(`--auth_token_file=${tokens}`).start();
    try {
      // The probes stay open, as grpc.health.v1 does.
      assert.equal((await call(secured.client, 'ServerLive', {})).live, true);
      assert.equal((await call(secured.client, 'ServerReady', {})).ready, true);
      assert.equal((await call(secured.client, 'ModelReady', { name: 'relu' })).ready, true);
      for (const [method, request] of [['ModelInfer', reluRequest()], ['ServerMetadata', {}],
        ['ModelMetadata', { name: 'relu' }]]) {
        await expectRpcError(call(secured.client, method, request), grpc.status.UNAUTHENTICATED);
        await expectRpcError(call(secured.client, method, request, bearer('wrong')),
          grpc.status.UNAUTHENTICATED);
        await call(secured.client, method, request, bearer('node-oip-token'));
      }
      const reply = await call(secured.client, 'ModelInfer', reluRequest([-1, 4], 'with token'),
        bearer('node-oip-token'));
      assert.equal(reply.id, 'with token');
      assertValues(reply.raw_output_contents[0], 'FP32', [0, 4]);
    } finally {
      assert.equal(await secured.stop(), 0, secured.log);
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('metrics', () => {
  test('the door\'s calls are counted by method and code', async () => {
    const counted = await new ServerProcess('--metrics_address=127.0.0.1:0').start();
    try {
      const metricsPort = Number(/metrics on port (\d+)/.exec(counted.log)[1]);
      for (let i = 0; i < 3; i += 1) await call(counted.client, 'ModelInfer', reluRequest());
      await expectRpcError(call(counted.client, 'ModelInfer', { ...reluRequest(), model_name: 'nope' }),
        grpc.status.NOT_FOUND);
      // The counters are updated as each call ends, before its reply is sent.
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const counts = {};
      for (const [, labels, value] of text.matchAll(/^actserve_requests_total\{([^}]*)\} (\S+)$/gm)) {
        const pairs = Object.fromEntries([...labels.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
        counts[`${pairs.method} ${pairs.code}`] = Number(value);
      }
      assert.equal(counts['ModelInfer OK'], 3, JSON.stringify(counts));
      assert.equal(counts['ModelInfer NOT_FOUND'], 1, JSON.stringify(counts));
    } finally {
      assert.equal(await counted.stop(), 0, counted.log);
    }
  });
});

describe('draining', () => {
  test('ServerReady turns false after SIGTERM while calls are still served', async () => {
    // --drain_delay keeps the server answering after SIGTERM; stop()'s second SIGTERM ends it.
    const draining = await new ServerProcess('--drain_delay=60s').start();
    try {
      assert.equal((await call(draining.client, 'ServerReady', {})).ready, true);
      draining.signal('SIGTERM');
      const deadline = Date.now() + 30000;
      while ((await call(draining.client, 'ServerReady', {})).ready) {
        assert.ok(Date.now() < deadline, 'ServerReady stayed true after SIGTERM');
        await sleep(POLL_MS);
      }
      assert.equal((await call(draining.client, 'ServerLive', {})).live, true);
      const reply = await call(draining.client, 'ModelInfer', reluRequest([-3, 3]));
      assertValues(reply.raw_output_contents[0], 'FP32', [0, 3]);
    } finally {
      assert.equal(await draining.stop(), 0, draining.log);
    }
  });
});
