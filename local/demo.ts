/**
 * `npm run demo` (`trainkeeper demo`): the whole product on one machine. It starts the embedded control
 * plane, submits examples/jobs/demo.yaml (2 nodes × 2 workers + 1 spare), injects four faults one after
 * another — a worker crash, a hang, a loss spike, a node marked unhealthy — shows each detection and
 * recovery as it happens and waits for the job to succeed. Then the elastic scene: the nodes are healed,
 * examples/jobs/demo-elastic.yaml (elasticPolicy 2..4) runs on exactly the 4 nodes, a node fault shrinks it
 * to 3 after `faultyScaleDownTimeoutInSeconds` and the healed node grows it back to 4 after
 * `scalingTimeoutInSeconds`, and it is cancelled. A summary table ends it.
 *
 * Exits 0 only if every fault was detected and recovered, the first job succeeded, and the elastic job
 * scaled down and back up with no remediation but the node fault's. `--torch` runs the same with the real
 * PyTorch DDP trainers (needs torch for /usr/bin/python3), plus an in-process restart scene between the two:
 * examples/jobs/demo-inprocess-torch.yaml (2 pods × 2 workers, `spec.trainkeeper.inProcessRestart`, agents
 * with `--inprocess-restart`) loses a worker and must recover at level `inprocess` and succeed.
 */

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { outColors as pc } from '../cli/style.ts';
import { type ChaosFault, type ChaosOptions, injectChaos } from './chaos.ts';
import { type LocalControlPlane, REPO_ROOT, startLocalControlPlane } from './control-plane.ts';

interface Remediation {
  reason: string;
  level: string;
  detectionLatencyMs: number;
  detectionTime: string;
  restartLatencyMs: number | null;
  generation: number;
}
interface ScalingEvent {
  direction: 'up' | 'down';
  from: number;
  to: number;
  reason: string;
  outcome: string;
  durationMs: number;
}
interface JobDoc {
  spec?: { elasticPolicy?: { faultyScaleDownTimeoutInSeconds?: number; scalingTimeoutInSeconds?: number } };
  status: {
    phase: string;
    generation: number;
    pods: { name: string; rank: number | null; node?: string; spare: boolean; agentState?: string }[];
    remediations: Remediation[];
    progress: { step?: number };
    worldSize?: number;
    elasticScalingStatus?: { events: ScalingEvent[] };
  };
}
interface EventDoc {
  at: number;
  type: string;
  reason: string;
  message: string;
  lifecycle?: string;
}

export interface DemoOptions {
  torch?: boolean;
  /** Where the demo writes (default stdout). */
  write?: (text: string) => void;
  isTTY?: boolean;
  /** Keep the data directory (logs, checkpoints) instead of removing it. */
  keep?: boolean;
}

interface FaultStep {
  fault: ChaosFault;
  options: ChaosOptions;
  label: string;
  /** The remediation reason that proves this fault was understood (a prefix: rule names vary). */
  expect: RegExp;
}

/** The faults the demo injects, in order. */
export const DEMO_FAULTS: FaultStep[] = [
  {
    fault: 'crash',
    options: { rank: 1, exitCode: 1 },
    label: 'worker crash (rank 1 exits 1)',
    expect: /^(WorkerCrash|LogFault_)/,
  },
  { fault: 'hang', options: { rank: 2 }, label: 'hang (rank 2 stops in a collective)', expect: /^LogHang_/ },
  {
    fault: 'spike',
    options: { rank: 0, steps: 6 },
    label: 'loss spike (rank 0, ×10 for 6 steps)',
    expect: /^LogSlow_LossSpike$/,
  },
  {
    fault: 'node-fault',
    options: { rank: 2 },
    label: 'node fault (rank 2’s node → UnschedulablePendingReplacement)',
    expect: /^NodeFault$/,
  },
];

/** Substitutes `${NAME}` placeholders, as `envsubst` does for HyperPod manifests. */
export const substitute = (text: string, values: Record<string, string>): string =>
  text.replace(/\$\{([A-Z_]+)\}/g, (m, name: string) => values[name] ?? m);

/** The demo manifest (or the elastic scene's), ready to submit. */
export function demoManifest(
  checkpointDir: string,
  torch: boolean,
  scene: 'faults' | 'elastic' | 'inprocess' = 'faults',
): string {
  if (scene === 'inprocess' && !torch) throw new Error('the in-process restart scene needs --torch');
  const base = scene === 'faults' ? 'demo' : `demo-${scene}`;
  const text = readFileSync(join(REPO_ROOT, 'examples/jobs', `${base}${torch ? '-torch' : ''}.yaml`), 'utf8');
  return substitute(text, { CHECKPOINT_DIR: checkpointDir });
}

/** The in-process restart scene's job (examples/jobs/demo-inprocess-torch.yaml) and its fault. */
const INPROCESS_JOB = 'demo-inprocess';
const INPROCESS_FAULT: FaultStep = {
  fault: 'crash',
  options: { rank: 1, exitCode: 3 },
  label: 'in-process: worker crash (rank 1 exits 3)',
  expect: /^(WorkerCrash|LogFault_)/,
};

/** The elastic scene's job and the sizes it moves between (examples/jobs/demo-elastic.yaml). */
const ELASTIC_JOB = 'demo-elastic';
const ELASTIC_FULL = 4;
const ELASTIC_SHRUNK = 3;

/** What the elastic scene measured: one scaling, from the chaos action that caused it. */
interface ScalingResult {
  label: string;
  /** The control plane's scaling, once it completed. */
  event?: ScalingEvent;
  /** Chaos action → the job running at the new size (includes the policy's timeout). */
  afterMs?: number;
  timeoutSeconds?: number;
}

export const hasTorch = (): boolean =>
  spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

export async function runDemo(options: DemoOptions = {}): Promise<number> {
  const write = options.write ?? ((t: string) => void process.stdout.write(t));
  const tty = options.isTTY ?? Boolean(process.stdout.isTTY);
  const say = (line: string) => write(`${tty ? '\r\x1b[2K' : ''}${line}\n`);
  if (options.torch && !hasTorch()) {
    say(pc.red('--torch needs PyTorch for /usr/bin/python3 (Debian: apt-get install python3-torch)'));
    return 1;
  }
  const t0 = Date.now();
  const since = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  say(pc.bold('TrainKeeper demo: the serverless control plane, run locally'));
  const dataDir = await mkdtemp(join(tmpdir(), 'trainkeeper-demo-'));
  const plane: LocalControlPlane = await startLocalControlPlane({ nodes: 4, dataDir });
  // Ctrl-C stops the plane (every pod process with it) before exiting, as `local up` does.
  const interrupt = (signal: NodeJS.Signals) => {
    say(pc.yellow(`${signal}: stopping the control plane…`));
    void plane.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let ok = false;
  try {
    say(
      `${since()}  control plane up: API ${plane.apiUrl}, 4 fake HyperPod nodes, dynalite, log shipper, sweep 1 s`,
    );
    say(`${since()}  data (logs, checkpoints): ${plane.dataDir}`);
    const api = plane.apiUrl;
    let jobName = 'demo-llama';
    const jobUrl = () => `${api}/jobs/default/${jobName}`;
    const getJob = async (): Promise<JobDoc> => (await (await fetch(jobUrl())).json()) as JobDoc;
    const chaosTarget = () => ({
      apiUrl: api,
      kubeconfigYaml: plane.kube.kubeconfigYaml(),
      chaosDir: plane.chaosDir,
      namespace: 'default',
      name: jobName,
    });

    const submitted = await fetch(`${api}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: demoManifest(join(plane.dataDir, 'checkpoints'), Boolean(options.torch)),
    });
    if (submitted.status !== 201)
      throw new Error(`submit failed: ${submitted.status} ${await submitted.text()}`);
    say(`${since()}  submitted default/demo-llama (2 nodes × 2 workers, 1 spare)`);

    // Follow the job's timeline as it happens.
    let after = 0;
    let following = true;
    let job = await getJob();
    const follow = (async () => {
      while (following) {
        const res = await fetch(`${jobUrl()}/events?after=${after}`).catch(() => undefined);
        if (res?.ok) {
          const { items } = (await res.json()) as { items: EventDoc[] };
          for (const e of items) {
            after = Math.max(after, e.at);
            const colour =
              e.type === 'Warning' ? pc.yellow : e.lifecycle === 'RestartCompleted' ? pc.green : pc.dim;
            say(`${since()}  ${colour(`${e.reason.padEnd(22)} ${e.message}`)}`);
          }
        }
        job = await getJob().catch(() => job);
        if (tty) {
          const s = job.status;
          const size = s.worldSize !== undefined && s.elasticScalingStatus ? ` · world ${s.worldSize}` : '';
          write(
            `\r\x1b[2K${pc.cyan(`${since()}  ${jobName} ${s.phase} · generation ${s.generation}${size} · step ${s.progress.step ?? '–'}`)}`,
          );
        }
        await sleep(200);
      }
    })();

    const waitFor = async (what: string, predicate: (j: JobDoc) => boolean, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const j = await getJob();
        if (predicate(j)) return j;
        if (['Failed', 'Cancelled'].includes(j.status.phase))
          throw new Error(`job ${j.status.phase} while waiting: ${what}`);
        await sleep(150);
      }
      throw new Error(`timed out waiting: ${what}`);
    };

    await waitFor('job running', (j) => j.status.phase === 'Running', 60_000);
    const results: {
      label: string;
      injectedAt: number;
      remediation?: Remediation;
      unexpected: Remediation[];
    }[] = [];
    for (const step of DEMO_FAULTS) {
      // Let training make progress past a checkpoint before the next fault.
      const before = await waitFor(
        'training progress',
        (j) => j.status.phase === 'Running' && (j.status.progress.step ?? 0) >= 0,
        60_000,
      );
      const startStep = before.status.progress.step ?? 0;
      await waitFor('a few training steps', (j) => (j.status.progress.step ?? 0) >= startStep + 12, 60_000);
      const count = (await getJob()).status.remediations.length;
      const injected = await injectChaos(chaosTarget(), step.fault, step.options);
      say(`${since()}  ${pc.magenta(`inject: ${step.label} → ${injected.target}`)}`);
      const recovered = await waitFor(
        `recovery from ${step.label}`,
        (j) =>
          j.status.phase === 'Running' &&
          j.status.remediations
            .slice(count)
            .some((r) => step.expect.test(r.reason) && r.restartLatencyMs !== null),
        90_000,
      );
      const fresh = recovered.status.remediations.slice(count);
      results.push({
        label: step.label,
        injectedAt: injected.at,
        remediation: fresh.find((r) => step.expect.test(r.reason)),
        unexpected: fresh.filter((r) => !step.expect.test(r.reason)),
      });
    }
    const done = await waitFor('job completion', (j) => j.status.phase === 'Succeeded', 180_000);

    // The in-process restart scene (--torch): a worker dies; the other three stay alive and re-enter, the
    // agents replace only the dead one, and the restart is recorded at level inprocess.
    let inProcessOk = true;
    if (options.torch) {
      const submittedIpr = await fetch(`${api}/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/yaml' },
        body: demoManifest(join(plane.dataDir, 'checkpoints-inprocess'), true, 'inprocess'),
      });
      if (submittedIpr.status !== 201)
        throw new Error(`submit failed: ${submittedIpr.status} ${await submittedIpr.text()}`);
      jobName = INPROCESS_JOB;
      say(`${since()}  submitted default/${INPROCESS_JOB} (2 nodes × 2 workers, inProcessRestart: true)`);
      await waitFor(
        `${INPROCESS_JOB} training`,
        (j) => j.status.phase === 'Running' && (j.status.progress.step ?? 0) >= 10,
        120_000,
      );
      const injected = await injectChaos(chaosTarget(), INPROCESS_FAULT.fault, INPROCESS_FAULT.options);
      say(`${since()}  ${pc.magenta(`inject: ${INPROCESS_FAULT.label} → ${injected.target}`)}`);
      const recovered = await waitFor(
        `recovery of ${INPROCESS_JOB}`,
        (j) => j.status.phase === 'Running' && j.status.remediations.some((r) => r.restartLatencyMs !== null),
        120_000,
      );
      const fresh = recovered.status.remediations;
      const remediation = fresh.find(
        (r) =>
          INPROCESS_FAULT.expect.test(r.reason) && r.level === 'inprocess' && r.restartLatencyMs !== null,
      );
      results.push({
        label: INPROCESS_FAULT.label,
        injectedAt: injected.at,
        remediation: remediation ?? fresh.at(-1),
        unexpected: fresh.filter((r) => r !== remediation),
      });
      const finished = await waitFor(
        `${INPROCESS_JOB} completion`,
        (j) => j.status.phase === 'Succeeded',
        180_000,
      );
      inProcessOk = remediation !== undefined && finished.status.remediations.length === 1;
    }

    // The elastic scene: every node healthy again (the node-fault scene left one unhealthy), then an elastic
    // job on exactly the 4 nodes; a node fault shrinks it, the healed node grows it back.
    const healed = await injectChaos(chaosTarget(), 'node-heal');
    say(`${since()}  ${pc.magenta(`heal: ${healed.target} Schedulable again (4 healthy nodes)`)}`);
    const elasticSubmitted = await fetch(`${api}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: demoManifest(join(plane.dataDir, 'checkpoints-elastic'), Boolean(options.torch), 'elastic'),
    });
    if (elasticSubmitted.status !== 201)
      throw new Error(`submit failed: ${elasticSubmitted.status} ${await elasticSubmitted.text()}`);
    jobName = ELASTIC_JOB;
    say(`${since()}  submitted default/${ELASTIC_JOB} (elasticPolicy 2..4, 4 nodes × 1 worker, no spare)`);
    const scalings = (j: JobDoc) => j.status.elasticScalingStatus?.events ?? [];
    const completedScaling = (j: JobDoc, direction: 'up' | 'down', from: number, to: number) =>
      scalings(j).find(
        (e) => e.direction === direction && e.from === from && e.to === to && e.outcome === 'Completed',
      );
    const full = await waitFor(
      `${ELASTIC_JOB} training at world size ${ELASTIC_FULL}`,
      (j) =>
        j.status.phase === 'Running' &&
        j.status.worldSize === ELASTIC_FULL &&
        (j.status.progress.step ?? 0) >= 5,
      60_000,
    );
    const policy = full.spec?.elasticPolicy ?? {};
    const elasticRemediations = full.status.remediations.length;
    const down: ScalingResult = {
      label: `scale-down ${ELASTIC_FULL} → ${ELASTIC_SHRUNK} (node fault, no spare node)`,
      timeoutSeconds: policy.faultyScaleDownTimeoutInSeconds,
    };
    const up: ScalingResult = {
      label: `scale-up ${ELASTIC_SHRUNK} → ${ELASTIC_FULL} (node healed)`,
      timeoutSeconds: policy.scalingTimeoutInSeconds,
    };
    const fault = await injectChaos(chaosTarget(), 'node-fault', { rank: ELASTIC_FULL - 1 });
    say(
      `${since()}  ${pc.magenta(`inject: node fault (rank ${ELASTIC_FULL - 1}’s node) → ${fault.target}`)}`,
    );
    // Running at `to` pods after a completed scaling from `from`.
    const scaled = (direction: 'up' | 'down', from: number, to: number, label: string) =>
      waitFor(
        label,
        (j) =>
          j.status.phase === 'Running' &&
          j.status.worldSize === to &&
          completedScaling(j, direction, from, to) !== undefined,
        60_000,
      );
    const shrunk = await scaled(
      'down',
      ELASTIC_FULL,
      ELASTIC_SHRUNK,
      `${ELASTIC_JOB} running at world size ${ELASTIC_SHRUNK}`,
    );
    down.afterMs = Date.now() - fault.at;
    down.event = completedScaling(shrunk, 'down', ELASTIC_FULL, ELASTIC_SHRUNK);
    const shrunkStep = shrunk.status.progress.step ?? 0;
    await waitFor(
      `${ELASTIC_JOB} training at world size ${ELASTIC_SHRUNK}`,
      (j) => (j.status.progress.step ?? 0) >= shrunkStep + 5,
      60_000,
    );
    const heal = await injectChaos(chaosTarget(), 'node-heal', fault.node ? { node: fault.node } : {});
    say(`${since()}  ${pc.magenta(`heal: ${heal.target} Schedulable again`)}`);
    const grown = await scaled(
      'up',
      ELASTIC_SHRUNK,
      ELASTIC_FULL,
      `${ELASTIC_JOB} running at world size ${ELASTIC_FULL} again`,
    );
    up.afterMs = Date.now() - heal.at;
    up.event = completedScaling(grown, 'up', ELASTIC_SHRUNK, ELASTIC_FULL);
    const grownStep = grown.status.progress.step ?? 0;
    const elasticAfter = await waitFor(
      `${ELASTIC_JOB} training at world size ${ELASTIC_FULL} again`,
      (j) => j.status.phase === 'Running' && (j.status.progress.step ?? 0) >= grownStep + 5,
      60_000,
    );
    following = false;
    await follow;
    // Its training is open-ended (the scene is over once it grew back): cancel it, as `trainkeeper cancel` does.
    const cancelled = await fetch(jobUrl(), { method: 'DELETE' });
    if (!cancelled.ok) throw new Error(`cancel failed: ${cancelled.status} ${await cancelled.text()}`);
    say(
      `${since()}  cancelled default/${ELASTIC_JOB}: back at world size ${ELASTIC_FULL}, the scene is over`,
    );

    say('');
    say(pc.bold('Summary'));
    const rows = results.map((r) => [
      r.label,
      r.remediation?.reason ?? '—',
      r.remediation?.level ?? '—',
      r.remediation ? `${Date.parse(r.remediation.detectionTime) - r.injectedAt} ms` : '—',
      r.remediation?.restartLatencyMs != null ? `${r.remediation.restartLatencyMs} ms` : '—',
    ]);
    // Detection is measured from the injection (the trainer acts on a chaos file at its next step, up to one
    // step later); restart is the record's own figure: detection → every agent RUNNING again.
    const header = ['fault', 'detected as', 'recovery', 'detected after', 'restart'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
    say(pc.bold(line(header)));
    for (const r of rows) say(line(r));
    const falseAlarms = results.flatMap((r) => r.unexpected);
    for (const r of falseAlarms) say(pc.yellow(`unexpected remediation: ${r.reason} (${r.level})`));
    const allRecovered = results.every((r) => r.remediation && r.remediation.restartLatencyMs !== null);

    // The elastic scene: world sizes, the time from the chaos action to the job running at the new size
    // (the policy's timeout included) and the control plane's own scaling duration.
    say('');
    const scaleRows = [down, up].map((r) => [
      r.label,
      r.event ? `${r.event.from} → ${r.event.to}` : '—',
      r.event?.reason ?? '—',
      r.timeoutSeconds !== undefined ? `${r.timeoutSeconds} s` : '—',
      r.afterMs !== undefined ? `${r.afterMs} ms` : '—',
      r.event ? `${r.event.durationMs} ms` : '—',
    ]);
    const scaleHeader = ['elastic', 'world size', 'reason', 'timeout', 'running after', 'scaling'];
    const scaleWidths = scaleHeader.map((h, i) => Math.max(h.length, ...scaleRows.map((r) => r[i]!.length)));
    const scaleLine = (cells: string[]) => cells.map((c, i) => c.padEnd(scaleWidths[i]!)).join('  ');
    say(pc.bold(scaleLine(scaleHeader)));
    for (const r of scaleRows) say(scaleLine(r));
    // The node fault is the elastic job's one remediation; scaling restarts are not faults.
    const elasticFresh = elasticAfter.status.remediations.slice(elasticRemediations);
    const elasticAlarms = elasticFresh.filter((r) => r.reason !== 'NodeFault');
    for (const r of elasticAlarms)
      say(pc.yellow(`unexpected remediation (${ELASTIC_JOB}): ${r.reason} (${r.level})`));
    const elasticOk = down.event !== undefined && up.event !== undefined && elasticAlarms.length === 0;

    ok =
      allRecovered &&
      falseAlarms.length === 0 &&
      done.status.phase === 'Succeeded' &&
      inProcessOk &&
      elasticOk;
    say('');
    say(
      ok
        ? pc.green(
            `jobs Succeeded after ${results.length} faults, all detected and recovered${options.torch ? ' (the in-process one at level inprocess)' : ''}; the elastic job scaled ${ELASTIC_FULL} → ${ELASTIC_SHRUNK} → ${ELASTIC_FULL} (${since().trim()} in all)`,
          )
        : pc.red(
            'demo failed: not every fault was detected and recovered exactly once, or the elastic job did not scale down and back up',
          ),
    );
  } catch (err) {
    say(pc.red(`demo failed: ${err instanceof Error ? err.message : String(err)}`));
    say(`control-plane log: ${join(plane.dataDir, 'control-plane.log')}`);
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await plane.stop();
    if (!ok || options.keep) say(pc.dim(`kept ${dataDir} for inspection`));
    else await rm(dataDir, { recursive: true, force: true });
  }
  return ok ? 0 : 1;
}
