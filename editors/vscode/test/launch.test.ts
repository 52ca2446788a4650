// Unit tests of the launch logic (node's test runner: `npm test`).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { chooseInterpreter, DEFAULTS, isMissing, readProbe, resolveLaunch, RESTART_ON, RunResult, serverArgs, Settings, substitute } from '../src/launch';

const settings = (over: Partial<Settings> = {}): Settings => ({ ...DEFAULTS, ...over });
const OK: RunResult = { code: 0, stdout: 'ckptlint server 0.2.0\n', stderr: '' };
const NO_MODULE: RunResult = { code: 1, stdout: '', stderr: "/usr/bin/python3: No module named ckptlint\n" };
const NO_LSP: RunResult = {
    code: 2, stdout: '',
    stderr: "ckptlint: error: the language server needs the `lsp` extra (in a clone of ckptlint: pip install '.[lsp]'): No module named 'pygls'\n",
};

/** A runner that answers from a table and remembers what it was asked. */
function runner(answers: Record<string, RunResult>) {
    const calls: { command: string; args: string[]; env?: Record<string, string> }[] = [];
    const run = async (command: string, args: string[], env?: Record<string, string>) => {
        calls.push({ command, args, env });
        const key = `${command}${env?.PYTHONPATH ? ' (bundled)' : ''}`;
        return answers[key] ?? { code: null, stdout: '', stderr: '', error: 'ENOENT' };
    };
    return { run, calls };
}

test('the rule selection becomes the server\'s command line, then ckptlint.args', () => {
    assert.deepEqual(serverArgs(settings()), ['server']);
    assert.deepEqual(
        serverArgs(settings({ select: ['CKPT001', ' CKPT002 '], ignore: ['CKPT004'], extendSelect: [''], args: ['--config', 'x.toml'] })),
        ['server', '--select', 'CKPT001,CKPT002', '--ignore', 'CKPT004', '--config', 'x.toml'],
    );
});

test('the interpreter comes from the setting, then the Python extension, then the default path, then PATH', () => {
    assert.deepEqual(chooseInterpreter(settings({ interpreter: ['/venv/bin/python'] }), ['/other'], '/x').interpreter, ['/venv/bin/python']);
    assert.deepEqual(chooseInterpreter(settings(), ['/env/bin/python'], '/x').interpreter, ['/env/bin/python']);
    assert.deepEqual(chooseInterpreter(settings(), undefined, '/opt/py/bin/python3').interpreter, ['/opt/py/bin/python3']);
    assert.deepEqual(chooseInterpreter(settings(), undefined, 'python').interpreter, ['python3']);
});

test('the interpreter\'s own ckptlint is run as a module with the server\'s arguments', async () => {
    const { run, calls } = runner({ '/venv/bin/python': OK });
    const launch = await resolveLaunch(settings({ ignore: ['CKPT004'] }), { interpreter: ['/venv/bin/python'], source: 'test' }, undefined, run);
    assert.ok(!isMissing(launch));
    assert.equal(launch.command, '/venv/bin/python');
    assert.deepEqual(launch.args, ['-m', 'ckptlint', 'server', '--ignore', 'CKPT004']);
    assert.equal(launch.version, '0.2.0');
    assert.deepEqual(calls[0].args, ['-m', 'ckptlint', 'server', '--version']); // asked before it is started
});

test('ckptlint.path wins, and keeps its own leading arguments', async () => {
    const { run } = runner({ '/tools/ckptlint': OK });
    const launch = await resolveLaunch(settings({ path: ['/tools/ckptlint'], select: ['CKPT0'] }), { interpreter: ['python3'], source: 'PATH' }, undefined, run);
    assert.ok(!isMissing(launch));
    assert.equal(launch.command, '/tools/ckptlint');
    assert.deepEqual(launch.args, ['server', '--select', 'CKPT0']);
});

test('a missing ckptlint is said plainly, naming the interpreter and what to do', async () => {
    const { run } = runner({ python3: NO_MODULE });
    const launch = await resolveLaunch(settings(), { interpreter: ['python3'], source: 'python3 on PATH' }, undefined, run);
    assert.ok(isMissing(launch));
    assert.match(launch.message, /python3 \(python3 on PATH\): ckptlint is not installed there/);
    assert.match(launch.message, /pip install '\.\[lsp\]'/);
    assert.match(launch.message, /ckptlint\.interpreter or ckptlint\.path/);
});

test('ckptlint without the lsp extra, and an interpreter that does not exist, each get their own reason', () => {
    assert.equal(readProbe(NO_LSP).problem, 'ckptlint is installed without its `lsp` extra (pygls)');
    assert.equal(readProbe({ code: null, stdout: '', stderr: '', error: 'ENOENT' }).problem, 'could not run it (ENOENT)');
    assert.equal(readProbe(OK).version, '0.2.0');
});

test('the bundled copy is used when the interpreter has none, through PYTHONPATH', async () => {
    const { run, calls } = runner({ python3: NO_MODULE, 'python3 (bundled)': OK });
    const launch = await resolveLaunch(settings(), { interpreter: ['python3'], source: 'PATH' }, '/ext/bundled/libs', run);
    assert.ok(!isMissing(launch));
    assert.deepEqual(launch.env, { PYTHONPATH: '/ext/bundled/libs' });
    assert.equal(calls.length, 2);
    const only = await resolveLaunch(settings({ importStrategy: 'useBundled' }), { interpreter: ['python3'], source: 'PATH' }, undefined, run);
    assert.ok(isMissing(only));
    assert.match(only.message, /bundles no ckptlint/);
});

test('a broken ckptlint.path is reported, not replaced by another install', async () => {
    const { run } = runner({ python3: OK });
    const launch = await resolveLaunch(settings({ path: ['/nope/ckptlint'] }), { interpreter: ['python3'], source: 'PATH' }, undefined, run);
    assert.ok(isMissing(launch));
    assert.match(launch.message, /ckptlint\.path setting \(\/nope\/ckptlint\)/);
});

test('settings may name the workspace folder, the home folder and environment variables', () => {
    const env = { VENV: '/v' };
    assert.equal(substitute('${workspaceFolder}/.venv/bin/python', '/ws', '/home/u', env), '/ws/.venv/bin/python');
    assert.equal(substitute('~/bin/ckptlint', undefined, '/home/u', env), '/home/u/bin/ckptlint');
    assert.equal(substitute('${env:VENV}/bin/python', undefined, '/home/u', env), '/v/bin/python');
});

test('every setting the extension reads or restarts on is declared in package.json, with its default', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf-8'));
    const declared = manifest.contributes.configuration.properties;
    for (const [key, value] of Object.entries(DEFAULTS)) {
        assert.ok(`ckptlint.${key}` in declared, `ckptlint.${key} is not declared`);
        assert.deepEqual(declared[`ckptlint.${key}`].default, value, `default of ckptlint.${key}`);
    }
    for (const key of RESTART_ON) {
        assert.ok(key in declared, key);
    }
    const commands = manifest.contributes.commands.map((c: { command: string }) => c.command);
    const source = fs.readFileSync(path.join(__dirname, '..', '..', 'src', 'extension.ts'), 'utf-8');
    for (const command of commands) {
        assert.ok(source.includes(`registerCommand('${command}'`), `${command} is declared but not registered`);
    }
});
