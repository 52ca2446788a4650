// How to start `ckptlint server`: from the settings, the interpreter and what the interpreter
// says it has. No `vscode` import here, so node's test runner can test it on its own.

export type ImportStrategy = 'fromEnvironment' | 'useBundled';

export interface Settings {
    enable: boolean;
    path: string[];
    interpreter: string[];
    importStrategy: ImportStrategy;
    args: string[];
    select: string[];
    extendSelect: string[];
    ignore: string[];
    fixAll: boolean;
}

export const DEFAULTS: Settings = {
    enable: true,
    path: [],
    interpreter: [],
    importStrategy: 'fromEnvironment',
    args: [],
    select: [],
    extendSelect: [],
    ignore: [],
    fixAll: false,
};

/** What running a command gave: its exit code (null when it could not start) and output. */
export interface RunResult {
    code: number | null;
    stdout: string;
    stderr: string;
    error?: string; // e.g. spawn ENOENT
}

export type Runner = (command: string, args: string[], env?: Record<string, string>) => Promise<RunResult>;

export interface Launch {
    command: string;
    args: string[];
    env: Record<string, string>; // added to the extension host's environment
    version: string; // `ckptlint server --version`'s answer
    source: string; // where ckptlint was found, for the status item and the logs
}

export interface Missing {
    missing: true;
    message: string; // one sentence for the notification
    detail: string; // what was tried, for the output channel
}

/** `server` and the arguments the settings ask for: the rule selection, then `ckptlint.args`. */
export function serverArgs(settings: Settings): string[] {
    const out = ['server'];
    const codes = (list: string[]) => list.map((c) => c.trim()).filter((c) => c.length > 0).join(',');
    if (codes(settings.select)) {
        out.push('--select', codes(settings.select));
    }
    if (codes(settings.extendSelect)) {
        out.push('--extend-select', codes(settings.extendSelect));
    }
    if (codes(settings.ignore)) {
        out.push('--ignore', codes(settings.ignore));
    }
    return out.concat(settings.args);
}

/** `${workspaceFolder}`, `${userHome}`, `${env:NAME}` and a leading `~` in a setting's value. */
export function substitute(value: string, workspaceFolder: string | undefined, home: string, env: NodeJS.ProcessEnv): string {
    let out = value.replace(/\$\{env:([^}]+)\}/g, (_, name: string) => env[name] ?? '');
    out = out.replace(/\$\{userHome\}/g, home);
    if (workspaceFolder !== undefined) {
        out = out.replace(/\$\{workspaceFolder\}/g, workspaceFolder);
    }
    if (out === '~' || out.startsWith('~/')) {
        out = home + out.slice(1);
    }
    return out;
}

/** The interpreter to use: the setting, else the Python extension's, else python3 on PATH. */
export function chooseInterpreter(settings: Settings, fromPythonExtension: string[] | undefined,
    defaultInterpreterPath: string | undefined): { interpreter: string[]; source: string } {
    if (settings.interpreter.length > 0) {
        return { interpreter: settings.interpreter, source: 'ckptlint.interpreter' };
    }
    if (fromPythonExtension && fromPythonExtension.length > 0) {
        return { interpreter: fromPythonExtension, source: 'the Python extension' };
    }
    if (defaultInterpreterPath && defaultInterpreterPath !== 'python') {
        return { interpreter: [defaultInterpreterPath], source: 'python.defaultInterpreterPath' };
    }
    return { interpreter: ['python3'], source: 'python3 on PATH' };
}

/** What `... server --version` tells: a version, or why ckptlint cannot serve from there. */
export function readProbe(result: RunResult): { version?: string; problem?: string } {
    const out = result.stdout.trim();
    const match = /^ckptlint server (\S+)/m.exec(out);
    if (result.code === 0 && match) {
        return { version: match[1] };
    }
    const err = result.stderr;
    if (result.error) {
        return { problem: `could not run it (${result.error})` };
    }
    if (/No module named '?ckptlint'?/.test(err)) {
        return { problem: 'ckptlint is not installed there' };
    }
    if (/lsp`? extra/.test(err)) {
        return { problem: "ckptlint is installed without its `lsp` extra (pygls)" };
    }
    const last = err.trim().split('\n').pop() ?? '';
    return { problem: `it answered with exit code ${result.code}${last ? `: ${last}` : ''}` };
}

/**
 * Where to run the server from, in this order: `ckptlint.path`; the interpreter's own ckptlint
 * (unless useBundled); the copy bundled with the extension (`bundledLibs`, when it has one),
 * run by the interpreter. Each candidate is asked `server --version` first, so a missing or
 * broken install is reported instead of a server that dies on start.
 */
export async function resolveLaunch(settings: Settings, interpreter: { interpreter: string[]; source: string },
    bundledLibs: string | undefined, run: Runner): Promise<Launch | Missing> {
    const tried: string[] = [];
    const args = serverArgs(settings);
    if (settings.path.length > 0) {
        const [command, ...pre] = settings.path;
        const probe = readProbe(await run(command, [...pre, 'server', '--version']));
        if (probe.version) {
            return { command, args: [...pre, ...args], env: {}, version: probe.version, source: `ckptlint.path (${command})` };
        }
        return {
            missing: true,
            message: `ckptlint: the ckptlint.path setting (${command}) cannot start the server: ${probe.problem}.`,
            detail: `${command} ${[...pre, 'server', '--version'].join(' ')}: ${probe.problem}`,
        };
    }
    const [python, ...pyArgs] = interpreter.interpreter;
    const moduleArgs = [...pyArgs, '-m', 'ckptlint'];
    if (settings.importStrategy !== 'useBundled') {
        const probe = readProbe(await run(python, [...moduleArgs, 'server', '--version']));
        if (probe.version) {
            return { command: python, args: [...moduleArgs, ...args], env: {}, version: probe.version, source: `${python} (${interpreter.source})` };
        }
        tried.push(`${python} (${interpreter.source}): ${probe.problem}`);
    }
    if (bundledLibs) {
        const env = { PYTHONPATH: bundledLibs };
        const probe = readProbe(await run(python, [...moduleArgs, 'server', '--version'], env));
        if (probe.version) {
            return { command: python, args: [...moduleArgs, ...args], env, version: probe.version, source: `the bundled copy, run by ${python}` };
        }
        tried.push(`the bundled copy with ${python}: ${probe.problem}`);
    } else if (settings.importStrategy === 'useBundled') {
        tried.push('ckptlint.importStrategy is useBundled, but this build of the extension bundles no ckptlint');
    }
    return {
        missing: true,
        message: `ckptlint: cannot start the language server: ${tried[0] ?? 'no interpreter'}. ` +
            "Install ckptlint with its lsp extra in that environment (in a clone of ckptlint: `pip install '.[lsp]'`), " +
            'or set ckptlint.interpreter or ckptlint.path.',
        detail: tried.join('\n'),
    };
}

export function isMissing(x: Launch | Missing): x is Missing {
    return (x as Missing).missing === true;
}

/** The settings that need a new server when they change (all but fixAll, read at each save). */
export const RESTART_ON = ['enable', 'path', 'interpreter', 'importStrategy', 'args', 'select', 'extendSelect', 'ignore']
    .map((k) => `ckptlint.${k}`);
