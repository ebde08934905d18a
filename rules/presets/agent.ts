/**
 * Worker-crash reports printed as text by the launcher (torchrun / torch.distributed.elastic, or a
 * launcher that mimics it). The trainkeeper-agent's structured JSON records are handled by the logs
 * Lambda directly; this preset catches the textual reports when the job runs another launcher.
 */
import type { LogRuleInput } from '../../core/spec/types.ts';

/** The `agent` preset's rules, as written (named `preset.agent.<name>` once loaded). */
export const rules: readonly LogRuleInput[] = [
  // The elastic agent's per-worker failure: "ERROR:torch.distributed.elastic.multiprocessing.api:failed
  // (exitcode: 1) local_rank: 0 (pid: 2345) of binary: /usr/bin/python3" (torch 1.x) or "E0501
  // 12:00:01.123000 140 torch/distributed/elastic/multiprocessing/api.py:826] failed (exitcode: -9)
  // local_rank: 1 (pid: 76) of binary: /opt/conda/bin/python" (torch 2.x). Group 1 is the exit code.
  {
    name: 'worker-failed',
    logPattern: String.raw`.*[:\]] ?failed \(exitcode: (-?\d+)\) local_rank: \d+`,
    faultOnMatch: true,
  },
  // torchrun's summary: "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:" followed by
  // the "Root Cause (first observed failure)" table.
  {
    name: 'child-failed',
    logPattern: String.raw`.*torch\.distributed\.elastic\.multiprocessing\.errors\.ChildFailedError`,
    faultOnMatch: true,
  },
];
