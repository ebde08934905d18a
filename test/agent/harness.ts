/**
 * Test harness for the agent: runs the real agent (bundled once per test file with esbuild, so each start
 * costs ~100 ms instead of a tsx transform) as a child process on a free loopback port, collects its stdout
 * lines and records, and talks to its HTTP API. Every agent started here is killed by PID in `stopAll`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { bundleAgent } from '../../agent/build.ts';
import { AGENT_RECORD_MARKER, AgentRecord } from '../../core/agent-protocol.ts';

export const WORKER = fileURLToPath(new URL('../fixtures/workers/worker.mjs', import.meta.url));

let bundle: Promise<string> | undefined;
const tmpDirs: string[] = [];
const running = new Set<AgentProc>();

/** A fresh temp dir, removed by `stopAll`. */
export function tempDir(prefix = 'tk-agent-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

function agentBundle(): Promise<string> {
  bundle ??= bundleAgent(join(tempDir('tk-agent-bundle-'), 'trainkeeper-agent.mjs'));
  return bundle;
}

/** True while a process with this pid exists and is not a zombie awaiting its reaper. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** Polls `cond` every 20 ms until true or `ms` pass; throws `what` on timeout. */
export async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export class AgentProc {
  readonly lines: string[] = [];
  stderr = '';
  port = 0;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private partial = '';

  private constructor(readonly proc: ChildProcess) {
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (d: string) => {
      const text = this.partial + d;
      const parts = text.split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Starts an agent with `args` (server flags are added) and waits for its HTTP server. */
  static async start(args: string[], env: NodeJS.ProcessEnv = {}): Promise<AgentProc> {
    const file = await agentBundle();
    const proc = spawn(process.execPath, [file, '--server-host', '127.0.0.1', ...args], {
      env: { ...process.env, TRAINKEEPER_AGENT_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const a = new AgentProc(proc);
    running.add(a);
    let done = false;
    void a.exited.then(() => {
      done = true;
    });
    await until(() => done || /listening on [^\s]+:(\d+)/.test(a.stderr), 'the agent to listen');
    const m = /listening on [^\s]+:(\d+)/.exec(a.stderr);
    if (m) a.port = Number(m[1]);
    return a;
  }

  /** Parsed agent records seen so far (every record line must parse). */
  records(): AgentRecord[] {
    return this.lines
      .filter((l) => l.includes(`"trainkeeper":"${AGENT_RECORD_MARKER}"`))
      .map((l) => AgentRecord.parse(JSON.parse(l)));
  }

  /** Forwarded worker lines (`[defaultN]:...`). */
  workerLines(): string[] {
    return this.lines.filter((l) => l.startsWith('[default'));
  }

  async call(
    path: string,
    body?: unknown,
    method = body === undefined && path === '/status' ? 'GET' : 'POST',
  ) {
    const res = await fetch(`http://127.0.0.1:${this.port}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(method === 'POST' ? { body: typeof body === 'string' ? body : JSON.stringify(body ?? {}) } : {}),
    });
    return { code: res.status, body: (await res.json()) as Record<string, unknown> & { status?: string } };
  }

  async status(): Promise<Record<string, unknown> & { status?: string }> {
    return (await this.call('/status')).body;
  }

  async waitStatus(status: string, ms = 20_000): Promise<Record<string, unknown>> {
    const end = Date.now() + ms;
    for (;;) {
      const s = await this.status();
      if (s.status === status) return s;
      if (Date.now() > end) throw new Error(`agent status is ${s.status}, wanted ${status}`);
      await sleep(25);
    }
  }

  /** Sends a signal to the agent and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGTERM') {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/** Kills every agent still running, by PID (SIGTERM, then SIGKILL after 5 s). Call in afterEach. */
export async function stopAll(): Promise<void> {
  for (const a of running) {
    const t = setTimeout(() => a.proc.kill('SIGKILL'), 5000);
    await a.kill('SIGTERM');
    clearTimeout(t);
    running.delete(a);
  }
}

/** Kills remaining agents and removes the temp dirs (the bundle too). Call in afterAll. */
export async function cleanup(): Promise<void> {
  await stopAll();
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
  bundle = undefined;
}

/** A minimal valid /start body. */
export const startBody = (faultCount: number, extra: Record<string, unknown> = {}) => ({
  rank: 0,
  nnodes: 1,
  faultCount,
  master_addr: '127.0.0.1',
  master_port: 29500,
  ...extra,
});

/** Pids printed by fake workers as `pid=<n>`. */
export const printedPids = (lines: string[], word = 'pid'): number[] =>
  lines.flatMap((l) => {
    const m = new RegExp(`\\b${word}=(\\d+)`).exec(l);
    return m ? [Number(m[1])] : [];
  });
