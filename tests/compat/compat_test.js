#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Compatibility suite: an unmodified client of the original service (Node's @grpc/grpc-js with
// @grpc/proto-loader, loading tests/compat/original_tools.proto: fields 1-6 only) checks every row
// of docs/compatibility.md against the built tools-server in one isolation mode.
//
//   node compat_test.js <cwd|bwrap|native>
//
// Needs TOOLS_SERVER_BIN (set by tests/compat/meson.build). Exits 77 (meson: skipped) with the
// reason when the npm packages are not installed (tests/compat/setup.sh runs `npm ci`) or the
// isolation mode cannot work on this machine; 1 when any row fails.
'use strict';

const SKIP = 77;
function skip(reason) {
  console.log(`SKIP: ${reason}`);
  process.exit(SKIP);
}

const majorNode = Number(process.versions.node.split('.')[0]);
if (majorNode < 18) skip(`node ${process.versions.node} is too old (the suite needs 18 or later)`);

let grpc;
let protoLoader;
try {
  grpc = require('@grpc/grpc-js');
  protoLoader = require('@grpc/proto-loader');
} catch (e) {
  skip(`the npm packages are not installed (${e.code || e.message}); run tests/compat/setup.sh, ` +
       `which runs \`npm ci\` in tests/compat`);
}

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const POLICY_PREFIX = 'Policy violation: ';
const HEALTH_SENTENCE = 'Tool executor service is operational';
const CALL_DEADLINE_MS = 120000;   // generous: the machine may be busy; nothing here waits that long
const TIME_LIMIT_MS = '1000';      // the time-limit server only ever runs `sleep 600`

// ---- the original client stack -----------------------------------------------------------------

const packageDefinition = protoLoader.loadSync(path.join(__dirname, 'original_tools.proto'), {
  keepCase: true, longs: String, enums: String, defaults: true, arrays: true, oneofs: true,
});
const tools = grpc.loadPackageDefinition(packageDefinition).tools;

function connect(address) {
  return new tools.ToolExecutorService(address, grpc.credentials.createInsecure());
}

// Every execution_id answered so far (the last row checks them all).
const seenIds = [];

// One unary call; resolves to {code, details, response} instead of rejecting on a gRPC status.
function call(client, method, request) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
    client[method](request, { deadline }, (err, response) => {
      if (err) {
        resolve({ code: err.code, details: err.details || '', response: null });
        return;
      }
      if (method === 'RequestExecution') seenIds.push(response.execution_id);
      resolve({ code: grpc.status.OK, details: '', response });
    });
  });
}

// A raw RequestExecution: bytes no protobuf library would produce (grpc-js with a custom serializer).
function callRaw(client, bytes) {
  return new Promise((resolve) => {
    const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
    client.makeUnaryRequest('/tools.ToolExecutorService/RequestExecution', (b) => b, (b) => b, bytes,
      new grpc.Metadata(), { deadline }, (err) => {
        resolve(err ? { code: err.code, details: err.details || '' } : { code: grpc.status.OK, details: '' });
      });
  });
}

// Protobuf wire format by hand: a length-delimited field (wire type 2).
function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}
function lengthDelimited(fieldNumber, bytes) {
  return Buffer.concat([varint((fieldNumber << 3) | 2), varint(bytes.length), bytes]);
}

// ---- the server under test ---------------------------------------------------------------------

// Every server started, so that no exit path (a skip, a crash) leaves one running.
const started = [];
process.on('exit', () => {
  for (const proc of started) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
});

// Starts tools-server in `mode`; resolves to {proc, address, stderrPath} or {failed: reason}.
function startServer(binary, workDir, name, mode, extraEnv) {
  const sandbox = path.join(workDir, `sandbox-${name}`);
  const stderrPath = path.join(workDir, `${name}.stderr`);
  const stderrFd = fs.openSync(stderrPath, 'w');
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    SANDBOX_DIR: sandbox,
    TOOLS_ISOLATION: mode,
    TOOLS_REQUIRE_ISOLATION: 'true',
    ...extraEnv,
  };
  if (process.env.PAGI_EXEC_BWRAP) env.TOOLS_BWRAP_PATH = process.env.PAGI_EXEC_BWRAP;
  const proc = spawn(binary, ['--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', stderrFd] });
  started.push(proc);
  fs.closeSync(stderrFd);
  return new Promise((resolve) => {
    let buffered = '';
    let done = false;
    const finish = (result) => {
      if (done) return;
      done = true;
      resolve({ ...result, proc, sandbox, stderrPath });
    };
    proc.stdout.on('data', (chunk) => {
      buffered += chunk.toString();
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      const line = buffered.slice(0, newline);
      if (line.startsWith('listening on ')) finish({ address: line.slice('listening on '.length).trim() });
      else finish({ failed: `first stdout line is ${JSON.stringify(line)}` });
    });
    proc.on('exit', (code, signal) => {
      finish({ failed: `exited (${signal || code}) before listening: ${fs.readFileSync(stderrPath, 'utf8').trim()}` });
    });
  });
}

function stopServer(server) {
  return new Promise((resolve) => {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
      resolve(server.proc.exitCode);
      return;
    }
    server.proc.once('exit', (code) => resolve(code));
    server.proc.kill('SIGTERM');
  });
}

// Whether `mode` can be expected to work here; a reason string when it cannot.
function modeUnavailable(mode) {
  if (mode === 'bwrap') {
    const candidates = [process.env.PAGI_EXEC_BWRAP, '/usr/bin/bwrap', '/bin/bwrap'].filter(Boolean);
    if (!candidates.some((p) => { try { fs.accessSync(p, fs.constants.X_OK); return true; } catch { return false; } })) {
      return 'bubblewrap is not installed';
    }
  }
  return null;
}

// ---- checks --------------------------------------------------------------------------------------

class Failure extends Error {}
function expect(condition, what) {
  if (!condition) throw new Failure(what);
}
function show(value) {
  return JSON.stringify(value);
}

// The exact key set an old client decodes: pagi-exec's fields 7+ are unknown to it and skipped.
const RESPONSE_FIELDS = ['success', 'exit_code', 'stdout_logs', 'stderr_logs', 'message', 'execution_id'];

function expectOk(result) {
  expect(result.code === grpc.status.OK, `gRPC status OK (got ${result.code} ${show(result.details)})`);
  const keys = Object.keys(result.response).sort();
  expect(show(keys) === show([...RESPONSE_FIELDS].sort()), `the original's six fields only (got ${show(keys)})`);
  return result.response;
}

function expectRefusal(result) {
  const r = expectOk(result);
  expect(r.success === false, `success=false (got ${r.success})`);
  expect(r.exit_code === 1, `exit_code=1 (got ${r.exit_code})`);
  expect(r.message.length > 0, 'message = the reason, not empty');
  expect(r.stderr_logs.length === 1 && r.stderr_logs[0] === POLICY_PREFIX + r.message,
    `stderr_logs = ["Policy violation: " + message] (got ${show(r.stderr_logs)}, message ${show(r.message)})`);
  expect(r.stdout_logs.length === 0, `no stdout (got ${show(r.stdout_logs)})`);
  return r;
}

// An argument error: in-band, exit 2, the explanation without the refusal prefix.
function expectUsageError(result) {
  const r = expectOk(result);
  expect(r.success === false, `success=false (got ${r.success})`);
  expect(r.exit_code === 2, `exit_code=2 (got ${r.exit_code}, message ${show(r.message)})`);
  expect(r.message.length > 0, 'message explains the mistake');
  expect(r.stderr_logs.length >= 1 && r.stderr_logs[0] === r.message,
    `stderr_logs[0] = message (got ${show(r.stderr_logs)}, message ${show(r.message)})`);
  expect(!r.message.startsWith(POLICY_PREFIX) && !r.stderr_logs[0].startsWith(POLICY_PREFIX),
    'no "Policy violation: " prefix (reserved for refusals)');
  return r;
}

function expectExit(result, code) {
  const r = expectOk(result);
  expect(r.exit_code === code, `exit_code=${code} (got ${r.exit_code}, message ${show(r.message)}, stderr ${show(r.stderr_logs)})`);
  expect(r.success === (code === 0), `success=${code === 0} (got ${r.success})`);
  return r;
}

function expectStatus(result, code, field) {
  expect(result.code === code, `gRPC status ${code} (got ${result.code} ${show(result.details)})`);
  if (field) expect(result.details.includes(field), `the message names ${field} (got ${show(result.details)})`);
}

const exec = (command, args, twin_id, extra = {}) => ({ command, args, twin_id, job_id: 'compat', ...extra });

// The rows of docs/compatibility.md, by their id there. Each gets {mode, sandbox, client, timeoutClient
// (TOOLS_EXEC_TIMEOUT_MS=1000), degradedClient (an audit log that fails)}.
// X8 (execution ids) is checked by main() over every answer of the others.
const rows = [
  ['H1', 'HealthCheck: status "healthy", a version, the original sentence first', async (t) => {
    const result = await call(t.client, 'HealthCheck', {});
    expect(result.code === grpc.status.OK, `gRPC status OK (got ${result.code})`);
    const h = result.response;
    expect(h.status === 'healthy', `status "healthy" (got ${show(h.status)})`);
    expect(h.version.length > 0, 'version is not empty');
    expect(h.message.startsWith(HEALTH_SENTENCE), `message starts with the original's sentence (got ${show(h.message.slice(0, 80))})`);
  }],
  ['H2', 'HealthCheck when the audit log fails: status "degraded", the reason after the original sentence', async (t) => {
    // /dev/full accepts the open and fails every write with ENOSPC: the first record fails.
    expectExit(await call(t.degradedClient, 'RequestExecution', exec('echo', ['recorded?'], 'twin-aegis')), 0);
    const result = await call(t.degradedClient, 'HealthCheck', {});
    expect(result.code === grpc.status.OK, `gRPC status OK (got ${result.code})`);
    const h = result.response;
    expect(h.status === 'degraded', `status "degraded" (got ${show(h.status)})`);
    expect(h.message.startsWith(HEALTH_SENTENCE), `message starts with the original's sentence (got ${show(h.message.slice(0, 80))})`);
    expect(/audit.log.*(fail|error|no space)/i.test(h.message), `message says the audit log fails (got ${show(h.message)})`);
  }],
  ['R1', 'refusal (twin-trace runs ls): OK, success=false, exit 1, "Policy violation: " + reason', async (t) => {
    expectRefusal(await call(t.client, 'RequestExecution', exec('ls', ['-l'], 'twin-trace')));
  }],
  ['R2', 'refusal (twin-aegis runs rm, always restricted); the reason names it', async (t) => {
    const r = expectRefusal(await call(t.client, 'RequestExecution', exec('rm', ['-rf', '/tmp/pagi-compat-nothing'], 'twin-aegis')));
    expect(r.message.includes("'rm'"), `the reason names 'rm' (got ${show(r.message)})`);
  }],
  ['R3', 'refusal (an unknown twin)', async (t) => {
    expectRefusal(await call(t.client, 'RequestExecution', exec('echo', ['hi'], 'twin-nobody')));
  }],
  ['R4', 'refusal (an empty twin_id)', async (t) => {
    expectRefusal(await call(t.client, 'RequestExecution', exec('echo', ['hi'], '')));
  }],
  ['R6', 'refused although the original ran it: /bin/rm, and rm inside a command_exec line', async (t) => {
    expectRefusal(await call(t.client, 'RequestExecution', exec('/bin/rm', ['-f', 'x'], 'twin-aegis')));
    expectRefusal(await call(t.client, 'RequestExecution', exec('command_exec', ['rm -rf ~'], 'twin-sentinel')));
  }],
  ['X1', 'a run exiting 0: success=true, exit 0, stdout as lines, message "Execution completed (elapsed_ms=N)"', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('echo', ['hello', 'compat'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['hello compat']), `stdout_logs ["hello compat"] (got ${show(r.stdout_logs)})`);
    expect(r.stderr_logs.length === 0, `no stderr (got ${show(r.stderr_logs)})`);
    expect(/^Execution completed \(elapsed_ms=\d+\)$/.test(r.message),
      `the original's message "Execution completed (elapsed_ms=N)" (got ${show(r.message)})`);
  }],
  ['X2', 'a run exiting 3: success=false, exit 3, stdout and stderr as lines, message "Execution failed (exit_code=3, elapsed_ms=N)"', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution',
      exec('command_exec', ['echo out; echo err >&2; exit 3'], 'twin-aegis')), 3);
    expect(show(r.stdout_logs) === show(['out']), `stdout_logs ["out"] (got ${show(r.stdout_logs)})`);
    expect(show(r.stderr_logs) === show(['err']), `stderr_logs ["err"] (got ${show(r.stderr_logs)})`);
    expect(/^Execution failed \(exit_code=3, elapsed_ms=\d+\)$/.test(r.message),
      `the original's message "Execution failed (exit_code=3, elapsed_ms=N)" (got ${show(r.message)})`);
  }],
  ['X3', 'killed by a signal: success=false, exit 128+N (the original said 1)', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('command_exec', ['kill -KILL $$'], 'twin-aegis')), 137);
    // bubblewrap's own init waits for the command and exits 128+N itself: we see an exit status.
    const said = t.mode === 'bwrap' ? /^Execution failed \(exit_code=137, elapsed_ms=\d+\)$/
                                    : /^Execution failed \(exit_code=137, elapsed_ms=\d+\); killed by signal 9 \(SIGKILL\)$/;
    expect(said.test(r.message), `message ${said} (got ${show(r.message)})`);
  }],
  ['X4', 'command_exec runs args[0] through /bin/sh -c (twin-sentinel)', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution',
      exec('command_exec', ['echo $((6*7)) | tr 4 x'], 'twin-sentinel')), 0);
    expect(show(r.stdout_logs) === show(['x2']), `a shell ran it: ["x2"] (got ${show(r.stdout_logs)})`);
  }],
  ['X5', 'command_exec: args[1..] become $1... (the original dropped them)', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution',
      exec('command_exec', ['echo "$0|$1|$2"', 'A', 'B'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['command_exec|A|B']), `["command_exec|A|B"] (got ${show(r.stdout_logs)})`);
  }],
  ['X6', 'any other command runs as argv, never through a shell', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('echo', ['$HOME', 'a;b', '$(id)'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['$HOME a;b $(id)']), `the arguments verbatim (got ${show(r.stdout_logs)})`);
  }],
  ['X7', 'all six request fields (job_id, namespace, metadata) are accepted', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution',
      exec('true', [], 'twin-aegis', { namespace: 'ns-compat', metadata: { origin: 'compat', step: '1' } })), 0);
    expect(r.stdout_logs.length === 0, 'no output');
  }],
  ['O1', 'stdout lines: split at \\n, empty lines kept, no trailing empty line', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('printf', ['a\\nb\\n\\nc\\n'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['a', 'b', '', 'c']), `["a","b","","c"] (got ${show(r.stdout_logs)})`);
  }],
  ['O2', 'stdout lines: a last line without \\n is kept', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('printf', ['x\\ny'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['x', 'y']), `["x","y"] (got ${show(r.stdout_logs)})`);
  }],
  ['O3', 'stdout lines: a \\r before \\n is kept (the original dropped it)', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('printf', ['a\\r\\nb\\r\\n'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['a\r', 'b\r']), `["a\\r","b\\r"] (got ${show(r.stdout_logs)})`);
  }],
  ['O4', 'stdout lines: invalid UTF-8 becomes U+FFFD', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('printf', ['\\377ok\\n'], 'twin-aegis')), 0);
    expect(show(r.stdout_logs) === show(['\uFFFDok']), `["\\uFFFDok"] (got ${show(r.stdout_logs)})`);
  }],
  ['O5', 'stdout lines: the first 200 kept; message notes the cut', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('seq', ['1', '300'], 'twin-aegis')), 0);
    expect(r.stdout_logs.length === 200, `200 lines (got ${r.stdout_logs.length})`);
    expect(r.stdout_logs[0] === '1' && r.stdout_logs[199] === '200', 'the first 200 lines, in order');
    expect(/^Execution completed \(elapsed_ms=\d+\); stdout truncated/.test(r.message), `message notes it (got ${show(r.message)})`);
  }],
  ['O6', 'stdout bytes: a 40000-byte line comes back as its first 32768 bytes (the original dropped it)', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution',
      exec('command_exec', ["head -c 40000 /dev/zero | tr '\\0' a"], 'twin-aegis')), 0);
    expect(r.stdout_logs.length === 1 && r.stdout_logs[0] === 'a'.repeat(32768),
      `one line of 32768 bytes (got ${r.stdout_logs.length} lines, ${r.stdout_logs.map((l) => l.length)})`);
  }],
  ['S1', 'program not found: 127, the reason in message and stderr_logs[0]', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('no-such-program-pagi-compat', [], 'twin-aegis')), 127);
    expect(r.message.length > 0 && show(r.stderr_logs) === show([r.message]),
      `stderr_logs = [message] (got ${show(r.stderr_logs)}, ${show(r.message)})`);
  }],
  ['S2', 'program not found by absolute path: 127', async (t) => {
    expectExit(await call(t.client, 'RequestExecution', exec('/nonexistent/pagi-compat', [], 'twin-aegis')), 127);
  }],
  ['S3', 'not executable (a file without the x bit): 126', async (t) => {
    const written = expectExit(await call(t.client, 'RequestExecution',
      exec('file_write', ['noexec.sh', '#!/bin/sh\necho should-not-run\n'], 'twin-aegis')), 0);
    expect(written.stdout_logs.length === 1, `file_write says what it wrote (got ${show(written.stdout_logs)})`);
    const where = t.mode === 'cwd' ? path.join(t.sandbox, 'twin-aegis', 'noexec.sh') : '/workspace/noexec.sh';
    const r = expectExit(await call(t.client, 'RequestExecution', exec(where, [], 'twin-aegis')), 126);
    expect(r.stdout_logs.length === 0, `it did not run (stdout ${show(r.stdout_logs)})`);
  }],
  ['S4', 'command "/" (a directory): 126', async (t) => {
    expectExit(await call(t.client, 'RequestExecution', exec('/', [], 'twin-aegis')), 126);
  }],
  ['S5', 'vector_query (no program configured): 127', async (t) => {
    expectExit(await call(t.client, 'RequestExecution', exec('vector_query', ['what is up'], 'twin-trace')), 127);
  }],
  ['T1', 'time limit: exit 124, message "execution_timeout", no synthetic stderr line', async (t) => {
    const r = expectExit(await call(t.timeoutClient, 'RequestExecution',
      exec('command_exec', ['echo before; exec sleep 600'], 'twin-aegis')), 124);
    expect(r.message === 'execution_timeout', `message "execution_timeout" (got ${show(r.message)})`);
    expect(!r.stderr_logs.some((l) => l.startsWith('Execution timed out')), `stderr is the command's (got ${show(r.stderr_logs)})`);
  }],
  ['T2', 'an RPC deadline passes: DEADLINE_EXCEEDED, as from any gRPC server', async (t) => {
    const result = await new Promise((resolve) => {
      t.client.RequestExecution(exec('sleep', ['600'], 'twin-aegis'), { deadline: new Date(Date.now() + 1500) },
        (err) => resolve(err ? err.code : grpc.status.OK));
    });
    expect(result === grpc.status.DEADLINE_EXCEEDED, `DEADLINE_EXCEEDED (got ${result})`);
  }],
  ['A1', 'argument error (file_write with one argument): OK, success=false, exit 2', async (t) => {
    expectUsageError(await call(t.client, 'RequestExecution', exec('file_write', ['only-a-path'], 'twin-sentinel')));
  }],
  ['A2', 'argument error (command_exec without arguments): OK, success=false, exit 2', async (t) => {
    expectUsageError(await call(t.client, 'RequestExecution', exec('command_exec', [], 'twin-sentinel')));
  }],
  ['A3', 'file_write is built in: it writes and says so (the original had no such program: 127)', async (t) => {
    const r = expectExit(await call(t.client, 'RequestExecution', exec('file_write', ['notes/a.txt', 'hello'], 'twin-sentinel')), 0);
    expect(show(r.stdout_logs) === show(['wrote 5 bytes to notes/a.txt']), `what it wrote (got ${show(r.stdout_logs)})`);
  }],
  ['A4', 'a NUL byte in args: OK, success=false, exit 2, the message names the field', async (t) => {
    const r = expectUsageError(await call(t.client, 'RequestExecution', exec('echo', ['a\u0000b'], 'twin-aegis')));
    expect(r.message.includes('args[0]'), `the message names args[0] (got ${show(r.message)})`);
  }],
  ['A5', 'more args than TOOLS_MAX_ARGS (1024): OK, success=false, exit 2, the message names the limit', async (t) => {
    const r = expectUsageError(await call(t.client, 'RequestExecution', exec('echo', Array(1025).fill('x'), 'twin-aegis')));
    expect(r.message.includes('TOOLS_MAX_ARGS'), `the message names TOOLS_MAX_ARGS (got ${show(r.message)})`);
  }],
  ['A6', 'an empty command: OK, success=false, exit 2 (the original: 127)', async (t) => {
    expectUsageError(await call(t.client, 'RequestExecution', exec('', [], 'twin-aegis')));
  }],
  ['A7', 'a file_write path leaving the workspace: OK, success=false, exit 2', async (t) => {
    const r = expectUsageError(await call(t.client, 'RequestExecution', exec('file_write', ['../escape', 'x'], 'twin-sentinel')));
    expect(r.message.includes('..'), `the message names the '..' (got ${show(r.message)})`);
  }],
  ['W1', 'unparseable: invalid UTF-8 in command: INVALID_ARGUMENT naming the field', async (t) => {
    const bytes = Buffer.concat([lengthDelimited(1, Buffer.from([0x65, 0xff, 0xfe])),
      lengthDelimited(3, Buffer.from('twin-aegis'))]);
    expectStatus(await callRaw(t.client, bytes), grpc.status.INVALID_ARGUMENT, 'command');
  }],
  ['W2', 'unparseable: invalid UTF-8 in args: INVALID_ARGUMENT naming the field', async (t) => {
    const bytes = Buffer.concat([lengthDelimited(1, Buffer.from('echo')), lengthDelimited(2, Buffer.from([0xc3, 0x28])),
      lengthDelimited(3, Buffer.from('twin-aegis'))]);
    expectStatus(await callRaw(t.client, bytes), grpc.status.INVALID_ARGUMENT, 'args');
  }],
  ['W3', 'unparseable: bytes that are not protobuf: INVALID_ARGUMENT', async (t) => {
    expectStatus(await callRaw(t.client, Buffer.from([0x0a, 0x7f, 0x41])), grpc.status.INVALID_ARGUMENT, null);
  }],
];

// ---- main ----------------------------------------------------------------------------------------

async function main() {
  const mode = process.argv[2];
  if (!['cwd', 'bwrap', 'native'].includes(mode)) {
    console.error('usage: compat_test.js <cwd|bwrap|native>');
    return 2;
  }
  const binary = process.env.TOOLS_SERVER_BIN;
  if (!binary) {
    console.error('TOOLS_SERVER_BIN must be set (run via meson test)');
    return 2;
  }
  const unavailable = modeUnavailable(mode);
  if (unavailable) skip(`isolation ${mode}: ${unavailable}`);

  const began = Date.now();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), `pagi-compat-${mode}-`));
  fs.chmodSync(workDir, 0o711);  // commands run as an unprivileged uid: the sandbox must be reachable
  const servers = [];
  let failures = 0;
  try {
    const main = await startServer(binary, workDir, 'main', mode, {});
    servers.push(main);
    const limited = await startServer(binary, workDir, 'timeout', mode, { TOOLS_EXEC_TIMEOUT_MS: TIME_LIMIT_MS });
    servers.push(limited);
    const degraded = await startServer(binary, workDir, 'degraded', mode, { TOOLS_AUDIT_LOG: '/dev/full' });
    servers.push(degraded);
    for (const s of servers) {
      if (!s.failed) continue;
      if (mode === 'native' && process.getuid() !== 0) {
        console.log(`SKIP: isolation native does not work here (not root): ${s.failed}`);
        return SKIP;
      }
      console.log(`not ok - [${mode}] the server starts: ${s.failed}`);
      return 1;
    }
    const t = { mode, sandbox: main.sandbox, client: connect(main.address), timeoutClient: connect(limited.address),
                degradedClient: connect(degraded.address) };
    let index = 0;
    for (const [id, name, run] of rows) {
      index += 1;
      try {
        await run(t);
        console.log(`ok ${index} - [${mode}] ${id} ${name}`);
      } catch (e) {
        failures += 1;
        console.log(`not ok ${index} - [${mode}] ${id} ${name}: ${e instanceof Failure ? e.message : e.stack}`);
      }
    }
    // The execution ids of every answer above: each a UUID v4, none repeated.
    index += 1;
    const idRow = 'X8 execution_id: a fresh UUID v4 in every answer (refusals and errors too)';
    try {
      expect(seenIds.length >= 20, `collected the ids (got ${seenIds.length})`);
      const bad = seenIds.filter((id) => !UUID_V4.test(id));
      expect(bad.length === 0, `every id is a UUID v4 (not: ${show(bad)})`);
      expect(new Set(seenIds).size === seenIds.length, 'no id repeats');
      console.log(`ok ${index} - [${mode}] ${idRow} (${seenIds.length} answers)`);
    } catch (e) {
      failures += 1;
      console.log(`not ok ${index} - [${mode}] ${idRow}: ${e.message}`);
    }
    for (const client of [t.client, t.timeoutClient, t.degradedClient]) client.close();
    console.log(`1..${index}`);
  } finally {
    for (const s of servers) {
      const code = await stopServer(s);
      if (code !== 0 && !s.failed) {
        failures += 1;
        console.log(`not ok - [${mode}] SIGTERM stops the server with exit 0 (got ${code}); its stderr ends:\n` +
                    fs.readFileSync(s.stderrPath, 'utf8').split('\n').slice(-20).join('\n'));
      }
    }
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  console.log(`${failures === 0 ? 'all rows pass' : `${failures} row(s) fail`} in isolation ${mode} ` +
              `(${((Date.now() - began) / 1000).toFixed(1)}s)`);
  return failures === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (e) => {
  console.error(e.stack);
  process.exit(1);
});
