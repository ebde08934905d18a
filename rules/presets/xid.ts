/**
 * NVIDIA driver Xid events (kernel log lines "NVRM: Xid (PCI:<bus id>): <code>, pid=..., name=..., <text>"),
 * when the node's kernel messages reach the job's log stream. Only Xids that mean the GPU or its link is
 * unusable until the node is drained are faults: 48 (double-bit ECC), 61/62 (internal micro-controller
 * breakpoint/halt), 64 (ECC page retirement failure), 69 (graphics engine class error), 74 (NVLink error),
 * 79 (GPU has fallen off the bus), 92 (high single-bit ECC rate), 94/95 (contained/uncontained ECC),
 * 119/120 (GSP RPC timeout/error), 140 (unrecovered ECC). Application Xids (13, 31, 43, 45) accompany a
 * CUDA error that the `cuda` preset already reports. Group 1 captures the Xid code.
 */
import type { LogRuleInput } from '../../core/spec/types.ts';

/** The `xid` preset's rules, as written (named `preset.xid.<name>` once loaded). */
export const rules: readonly LogRuleInput[] = [
  {
    name: 'fatal-xid',
    logPattern: String.raw`.*NVRM: Xid \([^)]*\): (48|61|62|64|69|74|79|92|94|95|119|120|140),`,
    faultOnMatch: true,
  },
];
