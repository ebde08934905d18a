/**
 * Process start/stop/monitor for the agent (torch elastic's `PContext` role), separate from the pure
 * supervisor in state.ts.
 *
 * Every process (worker or pre/post-train script) gets its own process group (`detached`), so a stop signal
 * sent to `-pgid` reaches its grandchildren too. Exits are event-driven (no polling while idle). Output is
 * forwarded line by line through `LineSplitter`, so lines of different workers never interleave mid-line.
 *
 * Invariants: `stopAll` resolves only when every tracked process has exited and its process group is
 * empty (or, for a group whose leftovers cannot be reaped, after a bounded wait); `onExit` fires exactly once
 * per started process, after its output up to the exit has been forwarded (bounded wait for the pipes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineSplitter } from './lines.ts';

/** One process to start. */
export interface ProcessPlan {
  /** Local rank for workers; -1 / -2 for the pre/post-train scripts. */
  localRank: number;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Line prefix on the agent's stdout, e.g. `[default0]:`. */
  prefix: string;
  /** Where the worker's error file goes (read after a failed exit). */
  errorFile?: string;
  /** Per-stream tee files (torchelastic layout), when `--log-dir` asks for them. */
  teeStdout?: string;
  teeStderr?: string;
  /** Forward this stream to the agent's stdout (false when `--redirects` sends it to the file only). */
  consoleStdout: boolean;
  consoleStderr: boolean;
}

/** How a process ended. */
export interface ProcessExit {
  localRank: number;
  pid: number | undefined;
  exitCode: number | null;
  signal: string | null;
  /** Parsed error file contents (JSON, else text), when present. */
  error?: unknown;
}

interface Tracked {
  plan: ProcessPlan;
  child: ChildProcess;
  splitters: LineSplitter[];
  pgid: number | undefined;
  exited: Promise<void>;
  alive: boolean;
}

/** How long an exit waits for the process's pipes to drain before it is reported anyway (ms). */
const PIPE_DRAIN_MS = 200;
/** After SIGKILL, how long to wait for a process group's leftovers (e.g. unreaped orphans) to vanish (ms). */
const GROUP_EMPTY_WAIT_MS = 1000;

/**
 * A set of running processes of one agent. `write` receives whole forwarded lines for the agent's stdout.
 */
export class ProcessSet {
  private tracked: Tracked[] = [];
  private stopping: Promise<void> | undefined;
  private killAt: { signal: NodeJS.Signals; deadline: number } | undefined;

  constructor(private readonly write: (lines: Buffer) => void) {}

  /** Number of started processes that have not exited yet. */
  get live(): number {
    return this.tracked.filter((t) => t.alive).length;
  }

  /** Starts one process; `onExit` fires once it ended (spawn failures report exit code 127). */
  start(plan: ProcessPlan, onExit: (exit: ProcessExit) => void): number | undefined {
    if (plan.errorFile) {
      mkdirSync(dirname(plan.errorFile), { recursive: true });
      rmSync(plan.errorFile, { force: true });
    }
    let child: ChildProcess;
    try {
      child = spawn(plan.command, plan.args, {
        env: plan.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      // Synchronous spawn failures (bad arguments, EAGAIN) are reported like a failed exec.
      this.write(
        Buffer.from(
          `${plan.prefix}trainkeeper-agent: cannot start ${plan.command}: ${(err as Error).message}\n`,
        ),
      );
      setImmediate(() => onExit({ localRank: plan.localRank, pid: undefined, exitCode: 127, signal: null }));
      return undefined;
    }
    const tees: WriteStream[] = [];
    const splitters: LineSplitter[] = [];
    const wire = (stream: NodeJS.ReadableStream | null, tee: string | undefined, toConsole: boolean) => {
      if (!stream) return;
      let file: WriteStream | undefined;
      if (tee) {
        mkdirSync(dirname(tee), { recursive: true });
        file = createWriteStream(tee, { flags: 'a' });
        tees.push(file);
      }
      const splitter = toConsole ? new LineSplitter(plan.prefix, this.write) : undefined;
      if (splitter) splitters.push(splitter);
      stream.on('data', (chunk: Buffer) => {
        splitter?.push(chunk);
        file?.write(chunk);
      });
      stream.on('end', () => splitter?.flush());
    };
    wire(child.stdout, plan.teeStdout, plan.consoleStdout);
    wire(child.stderr, plan.teeStderr, plan.consoleStderr);

    let reported = false;
    let resolveExited!: () => void;
    const t: Tracked = {
      plan,
      child,
      splitters,
      pgid: child.pid,
      alive: true,
      exited: new Promise((r) => {
        resolveExited = r;
      }),
    };
    this.tracked.push(t);
    const report = (exitCode: number | null, signal: string | null) => {
      if (reported) return;
      reported = true;
      t.alive = false;
      const exit: ProcessExit = { localRank: plan.localRank, pid: child.pid, exitCode, signal };
      if (exitCode !== 0 && plan.errorFile) {
        const error = readErrorFile(plan.errorFile);
        if (error !== undefined) exit.error = error;
      }
      for (const f of tees) f.end();
      resolveExited();
      onExit(exit);
    };
    child.on('error', (err) => {
      this.write(
        Buffer.from(`${plan.prefix}trainkeeper-agent: cannot start ${plan.command}: ${err.message}\n`),
      );
      report(127, null);
    });
    child.on('exit', (code, signal) => {
      // Give the pipes a moment so the worker's last lines precede its exit record.
      const timer = setTimeout(() => report(code, signal), PIPE_DRAIN_MS);
      child.on('close', () => {
        clearTimeout(timer);
        report(code, signal);
      });
    });
    return child.pid;
  }

  /**
   * Stops every tracked process and its process group: `signal`, then SIGKILL after `graceSeconds` if
   * any leader is still alive. Concurrent calls share one stop; a harsher signal or a shorter grace escalates it.
   */
  stopAll(signal: NodeJS.Signals, graceSeconds: number): Promise<void> {
    const deadline = Date.now() + graceSeconds * 1000;
    this.signalAll(signal);
    if (this.stopping) {
      if (this.killAt && deadline < this.killAt.deadline) this.killAt.deadline = deadline;
      return this.stopping;
    }
    this.killAt = { signal, deadline };
    this.stopping = this.runStop().finally(() => {
      this.stopping = undefined;
      this.killAt = undefined;
    });
    return this.stopping;
  }

  private async runStop(): Promise<void> {
    const all = (): Promise<void> => Promise.all(this.tracked.map((t) => t.exited)).then(() => undefined);
    if (this.killAt?.signal !== 'SIGKILL') {
      // Wait for the leaders until the (possibly shortened) deadline.
      for (;;) {
        const left = (this.killAt?.deadline ?? 0) - Date.now();
        if (left <= 0 || this.live === 0) break;
        await Promise.race([all(), sleep(Math.min(left, 250))]);
      }
    }
    // SIGKILL whatever is left, including grandchildren of leaders that already exited.
    this.signalAll('SIGKILL');
    await all();
    await this.waitGroupsEmpty();
    this.tracked = [];
  }

  /** Forwards the output of process `pid` with `prefix` from now on (a standby taking over a local rank). */
  retarget(pid: number, prefix: string): void {
    const t = this.tracked.find((x) => x.child.pid === pid);
    if (!t) return;
    t.plan.prefix = prefix;
    for (const s of t.splitters) s.setPrefix(prefix);
  }

  /** Sends `signal` to the process group of one process, if it is still alive. */
  kill(pid: number, signal: NodeJS.Signals): void {
    const t = this.tracked.find((x) => x.child.pid === pid && x.alive);
    if (t?.pgid === undefined) return;
    try {
      process.kill(-t.pgid, signal);
    } catch {
      // ESRCH: gone already.
    }
  }

  /** Sends `signal` to every live process group (the elastic event's optional signal), but `except` pids. */
  signal(signal: NodeJS.Signals, except: readonly number[] = []): void {
    this.signalAll(signal, except);
  }

  private signalAll(signal: NodeJS.Signals, except: readonly number[] = []): void {
    for (const t of this.tracked) {
      if (t.pgid === undefined || except.includes(t.pgid)) continue;
      try {
        process.kill(-t.pgid, signal);
      } catch {
        // ESRCH: the whole group is gone already.
      }
    }
  }

  private async waitGroupsEmpty(): Promise<void> {
    const until = Date.now() + GROUP_EMPTY_WAIT_MS;
    for (const t of this.tracked) {
      while (t.pgid !== undefined && groupExists(t.pgid) && Date.now() < until) {
        process.kill(-t.pgid, 'SIGKILL');
        await sleep(10);
      }
    }
  }
}

/**
 * True while the process group has a member that is not a zombie. A zombie (an orphan killed but not yet
 * reaped by PID 1) still answers `kill(-pgid, 0)`, so on Linux the members are checked in /proc; elsewhere
 * the signal probe alone decides.
 */
export function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

/** Reads a torch `@record` error file: JSON when it parses, else its text; undefined when absent. */
export function readErrorFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text.trim() || undefined;
  }
}
