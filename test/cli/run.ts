/**
 * Helpers for the CLI suites: run the real `trainkeeper` executable as a child process (async, so a file
 * can run several at once), a closed loopback port, and a job manifest derived from the demo job.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { descendantsOf } from '../../local/kube/kubelet.ts';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI entry point, absolute so commands can run from any working directory. */
export const BIN = `${ROOT}bin/trainkeeper.js`;

/** What one run of the CLI produced. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without TRAINKEEPER_ENDPOINT (tests choose the endpoint explicitly). */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!('TRAINKEEPER_ENDPOINT' in extra)) delete env.TRAINKEEPER_ENDPOINT;
  return env;
}

/** Runs `trainkeeper args…` to its end (killed after `timeoutMs`, default 120 s) and returns exit code and output. */
export function trainkeeper(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: options.env ?? cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/**
 * SIGKILLs a process and everything below it, if it still runs: the cleanup of a test that failed half-way
 * through a `local up` (it and the pods it started).
 */
export function killTree(pid: number | undefined): void {
  if (!pid || !isAlive(pid)) return;
  for (const p of [...descendantsOf(pid), pid]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {}
  }
}

/** True while a process with this id exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** A loopback port nobody listens on (bound, read, closed). */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * The demo job (examples/jobs/demo.yaml) renamed and resized for tests: `steps` training steps of
 * `stepTime` s (a 65,536-sample batch), checkpoints under `checkpointDir`, and without the 3-second hang rule (a busy 2-core CI
 * machine can stall log delivery that long, which would restart the job under the test).
 */
export function demoManifest(options: {
  name: string;
  checkpointDir: string;
  steps: number;
  stepTime?: number;
  replicas?: number;
  spares?: number;
  nprocPerNode?: number;
}): string {
  const text = readFileSync(`${ROOT}examples/jobs/demo.yaml`, 'utf8').replaceAll(
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the manifest's envsubst placeholder, not JS
    '${CHECKPOINT_DIR}',
    options.checkpointDir,
  );
  const doc = parse(text);
  doc.metadata.name = options.name;
  const nproc = options.nprocPerNode ?? 2;
  doc.spec.nprocPerNode = String(nproc);
  doc.spec.runPolicy.logMonitoringConfiguration = doc.spec.runPolicy.logMonitoringConfiguration.filter(
    (r: { name: string }) => r.name !== 'JobHangingDetection',
  );
  const spec = doc.spec.replicaSpecs[0];
  spec.replicas = options.replicas ?? 2;
  spec.spares = options.spares ?? 0;
  const container = spec.template.spec.containers[0];
  container.command = container.command.map((arg: string) =>
    arg.startsWith('--steps=')
      ? `--steps=${options.steps}`
      : arg.startsWith('--step-time=')
        ? `--step-time=${options.stepTime ?? 0.1}`
        : arg.startsWith('--nproc-per-node=')
          ? `--nproc-per-node=${nproc}`
          : arg,
  );
  // Throughput is beside the point here; a big batch keeps the LowThroughput rule quiet when a loaded
  // machine stretches the steps.
  container.command.push('--global-batch=65536');
  return stringify(doc);
}
