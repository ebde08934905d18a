/**
 * A real Prometheus (Debian's `prometheus` binary) with the remote-write receiver, on a free loopback port with
 * a throwaway TSDB directory. `stop()` kills exactly the process it started and removes the directory.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../local/net.ts';

/** A running Prometheus. */
export interface LocalPrometheus {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** The remote-write receiver URL. */
  writeUrl: string;
  /** Instant PromQL query; resolves the raw `/api/v1/query` JSON (status `success` or `error`). */
  query(expr: string, time?: number): Promise<PromQueryResponse>;
  stop(): Promise<void>;
}

/** The `/api/v1/query` answer. */
export interface PromQueryResponse {
  status: 'success' | 'error';
  errorType?: string;
  error?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** True when the `prometheus` binary is on PATH. */
export const hasPrometheus = (): boolean =>
  spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;

/** Starts Prometheus and waits until `/-/ready` answers 200. Throws if the binary is missing. */
export async function startPrometheus(): Promise<LocalPrometheus> {
  if (!hasPrometheus()) throw new Error('prometheus binary not on PATH (apt-get install prometheus)');
  const dir = mkdtempSync(join(tmpdir(), 'tk-prom-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, 'global:\n  scrape_interval: 1m\nscrape_configs: []\n');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-remote-write-receiver',
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${stderr}`);
      const ok = await fetch(`${url}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 300) throw new Error(`prometheus not ready on ${url}: ${stderr}`);
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    writeUrl: `${url}/api/v1/write`,
    query: async (expr, time) => {
      const params = new URLSearchParams({ query: expr });
      if (time !== undefined) params.set('time', String(time / 1000));
      const res = await fetch(`${url}/api/v1/query`, { method: 'POST', body: params });
      return (await res.json()) as PromQueryResponse;
    },
    stop,
  };
}
