/**
 * The training side of elastic scaling, HyperPod's unchanged: a script polls
 * `hyperpod_elastic_agent.elastic_event_handler.elastic_event_detected()` each step and, when it turns
 * True, checkpoints and exits cleanly; the control plane restarts every rank at the new world size.
 *
 * When the real `hyperpod_elastic_agent` package is not importable by the workers' Python, the agent writes
 * a tiny pure-Python package of that name and puts it on the workers' `PYTHONPATH`. It is backed by a file:
 * `TRAINKEEPER_ELASTIC_EVENT_FILE` names a per-generation path that the agent creates when the control
 * plane calls `POST /elastic-event`; `elastic_event_detected()` is `os.path.exists(that path)`. The same
 * env var is the language-neutral way for other launchers (and `--elastic-event-signal` optionally signals
 * the workers' process groups too).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Env var naming the file that appears when an elastic event is raised for the worker's generation. */
export const ELASTIC_EVENT_FILE_ENV = 'TRAINKEEPER_ELASTIC_EVENT_FILE';

/** The shim package's files (module path → source). Pure Python 3, standard library only. */
export const SHIM_FILES: Record<string, string> = {
  'hyperpod_elastic_agent/__init__.py':
    '"""TrainKeeper stand-in for the HyperPod elastic agent package (elastic events only)."""\n',
  'hyperpod_elastic_agent/elastic_event_handler.py': `"""Elastic events raised by trainkeeper-agent (stand-in for HyperPod's module of this name).

The agent creates the file named by ${ELASTIC_EVENT_FILE_ENV} when the control plane scales the job;
training scripts poll elastic_event_detected() each step, checkpoint and exit when it returns True.
"""
import os


def elastic_event_detected():
    """True once the control plane raised an elastic event for this run of the worker."""
    path = os.environ.get("${ELASTIC_EVENT_FILE_ENV}")
    return bool(path) and os.path.exists(path)
`,
};

/** Whether `python` can import the real `hyperpod_elastic_agent` (false when python itself is missing). */
export function hasRealPackage(python: string, env: NodeJS.ProcessEnv): boolean {
  const probe = spawnSync(
    python,
    [
      '-c',
      'import importlib.util,sys; sys.exit(0 if importlib.util.find_spec("hyperpod_elastic_agent") else 3)',
    ],
    { env, stdio: 'ignore', timeout: 10_000 },
  );
  return probe.status === 0;
}

/** Writes the shim package under `dir` and returns `dir` (the PYTHONPATH entry). */
export function writeShim(dir: string): string {
  for (const [path, source] of Object.entries(SHIM_FILES)) {
    const file = join(dir, path);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, source);
  }
  return dir;
}

/** `PYTHONPATH` with `entry` appended (after the user's entries: theirs win). */
export const withPythonPath = (current: string | undefined, entry: string): string =>
  current && current !== '' ? `${current}${delimiter}${entry}` : entry;
