// The VS Code side of ckptlint: finds ckptlint, starts `ckptlint server` and talks LSP to it.
// Findings, quick fixes and "fix all" come from the server; this file only wires them in.

import { execFile } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import { CodeActionRequest, LanguageClient, LanguageClientOptions, RevealOutputChannelOn, ServerOptions, State } from 'vscode-languageclient/node';
import { chooseInterpreter, DEFAULTS, isMissing, Launch, resolveLaunch, RESTART_ON, RunResult, Settings, substitute } from './launch';

const FIX_ALL = 'source.fixAll.ckptlint';

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let status: vscode.LanguageStatusItem;
let starting: Promise<void> = Promise.resolve();

export async function activate(context: vscode.ExtensionContext): Promise<void> {
    output = vscode.window.createOutputChannel('ckptlint', { log: true });
    status = vscode.languages.createLanguageStatusItem('ckptlint.status', { language: 'python' });
    status.name = 'ckptlint';
    status.command = { title: 'Show Logs', command: 'ckptlint.showLogs' };
    const bundled = path.join(context.extensionPath, 'bundled', 'libs');
    const bundledLibs = fs.existsSync(bundled) ? bundled : undefined;

    const restart = () => {
        starting = starting.then(() => start(bundledLibs), () => start(bundledLibs));
        return starting;
    };
    context.subscriptions.push(
        output,
        status,
        vscode.commands.registerCommand('ckptlint.restart', restart),
        vscode.commands.registerCommand('ckptlint.showLogs', () => output.show()),
        vscode.commands.registerCommand('ckptlint.fixAll', fixAllInEditor),
        vscode.workspace.onDidChangeConfiguration((e) => {
            if (RESTART_ON.some((key) => e.affectsConfiguration(key)) || e.affectsConfiguration('python.defaultInterpreterPath')) {
                void restart();
            }
        }),
        vscode.workspace.onWillSaveTextDocument((e) => {
            if (e.document.languageId === 'python' && readSettings(e.document.uri).fixAll && client?.state === State.Running) {
                e.waitUntil(fixAllEdits(e.document));
            }
        }),
        vscode.workspace.onDidGrantWorkspaceTrust(() => void restart()),
    );
    const python = vscode.extensions.getExtension('ms-python.python');
    if (python) {
        try {
            const api = await python.activate();
            const event = api?.environments?.onDidChangeActiveEnvironmentPath;
            if (typeof event === 'function') {
                context.subscriptions.push(event(() => void restart()));
            }
        } catch (err) {
            output.warn(`the Python extension did not activate: ${err}`);
        }
    }
    await restart();
}

export async function deactivate(): Promise<void> {
    await stop();
}

function readSettings(resource?: vscode.Uri): Settings {
    const config = vscode.workspace.getConfiguration('ckptlint', resource);
    const folder = resource ? vscode.workspace.getWorkspaceFolder(resource) : vscode.workspace.workspaceFolders?.[0];
    const sub = (v: string) => substitute(v, folder?.uri.fsPath, os.homedir(), process.env);
    const list = (key: keyof Settings) => (config.get<string[]>(key) ?? (DEFAULTS[key] as string[])).map(sub);
    return {
        enable: config.get<boolean>('enable', DEFAULTS.enable),
        path: list('path'),
        interpreter: list('interpreter'),
        importStrategy: config.get('importStrategy', DEFAULTS.importStrategy),
        args: list('args'),
        select: list('select'),
        extendSelect: list('extendSelect'),
        ignore: list('ignore'),
        fixAll: config.get<boolean>('fixAll', DEFAULTS.fixAll),
    };
}

async function interpreterFromPythonExtension(resource?: vscode.Uri): Promise<string[] | undefined> {
    const python = vscode.extensions.getExtension('ms-python.python');
    if (!python) {
        return undefined;
    }
    try {
        const api = await python.activate();
        const envs = api?.environments;
        if (!envs) {
            return undefined;
        }
        const env = await envs.resolveEnvironment(envs.getActiveEnvironmentPath(resource));
        const exe: string | undefined = env?.executable?.uri?.fsPath;
        return exe ? [exe] : undefined;
    } catch (err) {
        output.warn(`could not ask the Python extension for its interpreter: ${err}`);
        return undefined;
    }
}

function run(command: string, args: string[], env?: Record<string, string>): Promise<RunResult> {
    return new Promise((resolve) => {
        const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
        execFile(command, args, { cwd, env: { ...process.env, ...env }, timeout: 30000 }, (error, stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
            const failed = error && typeof error.code !== 'number' ? String(error.code ?? error.message) : undefined;
            resolve({ code, stdout: String(stdout), stderr: String(stderr), error: failed });
        });
    });
}

async function stop(): Promise<void> {
    const old = client;
    client = undefined;
    if (old) {
        try {
            await old.stop();
        } catch (err) {
            output.error(`stopping the server failed: ${err}`);
        }
        await old.dispose();
    }
}

async function start(bundledLibs: string | undefined): Promise<void> {
    await stop();
    const resource = vscode.window.activeTextEditor?.document.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri;
    const settings = readSettings(resource);
    if (!settings.enable) {
        setStatus('disabled', 'ckptlint.enable is off', vscode.LanguageStatusSeverity.Information);
        output.info('ckptlint.enable is off: no server');
        return;
    }
    if (!vscode.workspace.isTrusted) {
        setStatus('waiting for trust', 'ckptlint starts once the workspace is trusted', vscode.LanguageStatusSeverity.Information);
        output.info('the workspace is not trusted: ckptlint waits (it runs an interpreter the workspace may choose)');
        return;
    }
    const interpreter = chooseInterpreter(settings, await interpreterFromPythonExtension(resource),
        vscode.workspace.getConfiguration('python', resource).get<string>('defaultInterpreterPath'));
    setStatus('starting', `looking for ckptlint in ${interpreter.interpreter.join(' ')}`, vscode.LanguageStatusSeverity.Information);
    const launch = await resolveLaunch(settings, interpreter, bundledLibs, run);
    if (isMissing(launch)) {
        output.error(launch.detail);
        setStatus('not found', launch.message, vscode.LanguageStatusSeverity.Error);
        const choice = await vscode.window.showErrorMessage(launch.message, 'Open Settings', 'Show Logs');
        if (choice === 'Open Settings') {
            void vscode.commands.executeCommand('workbench.action.openSettings', 'ckptlint');
        } else if (choice === 'Show Logs') {
            output.show();
        }
        return;
    }
    await startClient(launch);
}

async function startClient(launch: Launch): Promise<void> {
    output.info(`ckptlint ${launch.version} from ${launch.source}: ${[launch.command, ...launch.args].join(' ')}`);
    const serverOptions: ServerOptions = {
        command: launch.command,
        args: launch.args,
        options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath, env: { ...process.env, ...launch.env } },
    };
    const clientOptions: LanguageClientOptions = {
        documentSelector: [
            { scheme: 'file', language: 'python' },
            { scheme: 'untitled', language: 'python' },
        ],
        outputChannel: output,
        revealOutputChannelOn: RevealOutputChannelOn.Never,
        synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher('**/pyproject.toml') },
    };
    const next = new LanguageClient('ckptlint', 'ckptlint', serverOptions, clientOptions);
    next.onDidChangeState((e) => {
        if (e.newState === State.Running) {
            setStatus(launch.version, `ckptlint ${launch.version} from ${launch.source}`, vscode.LanguageStatusSeverity.Information);
        } else if (e.newState === State.Stopped && client === next) {
            setStatus('stopped', 'the ckptlint server stopped: see the logs; "ckptlint: Restart Server" starts it again', vscode.LanguageStatusSeverity.Warning);
        }
    });
    client = next;
    try {
        await next.start();
    } catch (err) {
        output.error(`the server did not start: ${err}`);
        setStatus('failed', `the ckptlint server did not start: ${err}`, vscode.LanguageStatusSeverity.Error);
        void vscode.window.showErrorMessage(`ckptlint: the language server did not start (${err}). See "ckptlint: Show Logs".`);
    }
}

function setStatus(text: string, detail: string, severity: vscode.LanguageStatusSeverity): void {
    status.text = `ckptlint: ${text}`;
    status.detail = detail;
    status.severity = severity;
}

/** The edits of the server's `source.fixAll.ckptlint` action for the document as it is now. */
async function fixAllEdits(document: vscode.TextDocument): Promise<vscode.TextEdit[]> {
    const current = client;
    if (!current) {
        return [];
    }
    const whole = new vscode.Range(0, 0, document.lineCount, 0);
    const actions = await current.sendRequest(CodeActionRequest.type, {
        textDocument: { uri: current.code2ProtocolConverter.asUri(document.uri) },
        range: current.code2ProtocolConverter.asRange(whole),
        context: { diagnostics: [], only: [FIX_ALL] },
    });
    const edits: vscode.TextEdit[] = [];
    for (const action of actions ?? []) {
        const changes = 'edit' in action ? action.edit?.changes : undefined;
        for (const [uri, list] of Object.entries(changes ?? {})) {
            if (current.protocol2CodeConverter.asUri(uri).toString() === document.uri.toString()) {
                edits.push(...(await current.protocol2CodeConverter.asTextEdits(list) ?? []));
            }
        }
    }
    return edits;
}

async function fixAllInEditor(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.languageId !== 'python') {
        return;
    }
    const edits = await fixAllEdits(editor.document);
    if (edits.length) {
        const edit = new vscode.WorkspaceEdit();
        edit.set(editor.document.uri, edits);
        await vscode.workspace.applyEdit(edit);
    }
}
