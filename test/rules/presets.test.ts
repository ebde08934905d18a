import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PRESET_NAMES } from '../../core/spec/preset-names.ts';
import type { JobSpec } from '../../core/spec/types.ts';
import { compileRules, evaluateLines, initialRuleState } from '../../rules/engine.ts';
import { parseKubectlLog } from '../../rules/kubectl-log.ts';
import { effectiveRules, loadPresetRules } from '../../rules/presets/index.ts';
import { rule } from './helpers.ts';

const fixture = (name: string) => {
  const text = readFileSync(new URL(`../fixtures/logs/${name}`, import.meta.url), 'utf8');
  return parseKubectlLog(text, name);
};

/** Every preset over one fixture file: the findings as `rule stream line`. */
function presetFindings(name: string): string[] {
  const log = fixture(name);
  const c = compileRules(loadPresetRules(PRESET_NAMES));
  const start = log.firstTimestamp as number;
  const { findings } = evaluateLines(c, initialRuleState(c, 0, start), log.lines, start);
  return findings.map((f) => {
    const line = log.lines.find(
      (l) => l.timestamp === f.at && l.stream === f.stream && l.text.startsWith(f.text ?? ''),
    );
    return `${f.verdict} ${f.rule} ${f.stream} line ${line?.lineNumber}`;
  });
}

describe('rule presets', () => {
  it('every preset named in preset-names.ts loads, with prefixed names and a preset source', () => {
    for (const preset of PRESET_NAMES) {
      const rules = loadPresetRules([preset]);
      expect(rules.length).toBeGreaterThan(0);
      for (const r of rules) {
        expect(r.name.startsWith(`preset.${preset}.`)).toBe(true);
        expect(r.source).toEqual({ kind: 'preset', preset });
        expect(r.faultOnMatch).toBe(true);
      }
    }
  });

  it('every preset rule is named in kebab-case, so `preset.<preset>.<rule>` splits back unambiguously', () => {
    for (const r of loadPresetRules(PRESET_NAMES)) {
      expect(r.name).toMatch(/^preset\.[a-z]+\.[a-z][a-z0-9-]*$/);
    }
  });

  it.each([
    [
      'nccl-watchdog-timeout.log',
      ['FAULTED preset.nccl.watchdog-timeout nccl-watchdog-timeout.log/1 line 24'],
    ],
    [
      'cuda-illegal-memory-access.log',
      ['FAULTED preset.cuda.cuda-error cuda-illegal-memory-access.log/0 line 23'],
    ],
    ['oom.log', ['FAULTED preset.oom.cuda-oom oom.log/0 line 19']],
    ['xid.log', ['FAULTED preset.xid.fatal-xid xid.log line 6']],
    [
      'checkpoint-s3-upload.log',
      ['FAULTED preset.checkpoint.s3-upload-failed checkpoint-s3-upload.log/0 line 12'],
    ],
    [
      'agent-child-failed.log',
      [
        'FAULTED preset.agent.worker-failed agent-child-failed.log line 10',
        'FAULTED preset.agent.child-failed agent-child-failed.log line 18',
      ],
    ],
    ['clean.log', []],
  ])('%s triggers exactly the expected findings', (name, expected) => {
    expect(presetFindings(name)).toEqual(expected);
  });

  it.each([
    [
      'nccl',
      'torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:275, unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.18.1',
      'preset.nccl.nccl-error',
    ],
    ['nccl', 'ncclInternalError: Internal check failed.', 'preset.nccl.nccl-error'],
    [
      'nccl',
      'ip-10-1-2-3:231:911 [3] transport/net_ib.cc:1295 NCCL WARN NET/IB : Got completion from peer 10.1.2.4<55512> with status=12 opcode=0 len=0 vendor err 129 (Recv)',
      'preset.nccl.net-error',
    ],
    [
      'nccl',
      'ip-10-1-2-3:231:911 [3] NCCL WARN NET/OFI Request 0x7f3b2c0 completed with error. RC: 21. Error: 4126 (Unresponsive receiver (reachable by EFA device but handshake failed))',
      'preset.nccl.net-error',
    ],
    ['cuda', 'RuntimeError: CUDA error: uncorrectable ECC error encountered', 'preset.cuda.cuda-error'],
    ['cuda', 'RuntimeError: CUDA error: device-side assert triggered', 'preset.cuda.cuda-error'],
    [
      'cuda',
      'RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx( handle, opa, opb, m, n, k, &falpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb, &fbeta, c, CUDA_R_16BF, ldc, CUDA_R_32F, CUBLAS_GEMM_DEFAULT_TENSOR_OP)`',
      'preset.cuda.cuda-error',
    ],
    [
      'cuda',
      'RuntimeError: Triton Error [CUDA]: an illegal memory access was encountered',
      'preset.cuda.driver-error',
    ],
    [
      'oom',
      'torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; 14.21 GiB already allocated)',
      'preset.oom.cuda-oom',
    ],
    ['oom', 'RuntimeError: CUDA error: out of memory', 'preset.oom.cuda-oom'],
    ['oom', 'MemoryError', 'preset.oom.host-oom'],
    [
      'oom',
      'numpy.core._exceptions._ArrayMemoryError: Unable to allocate 3.73 GiB for an array with shape (1000000000,)',
      'preset.oom.host-oom',
    ],
    [
      'xid',
      '[ 812.1] NVRM: Xid (PCI:0000:3b:00): 48, pid=1234, name=python, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0.',
      'preset.xid.fatal-xid',
    ],
    [
      'xid',
      'NVRM: Xid (PCI:0000:0f:00): 74, pid=44, name=python, NVLink: fatal error detected on link 3',
      'preset.xid.fatal-xid',
    ],
    [
      'checkpoint',
      'botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied',
      'preset.checkpoint.s3-upload-failed',
    ],
    [
      'checkpoint',
      "OSError: [Errno 122] Disk quota exceeded: '/fsx/ckpt/iter_0002000/__0_0.distcp'",
      'preset.checkpoint.storage-write-error',
    ],
    [
      'checkpoint',
      'LustreError: 11-0: fsx-OST0003-osc-ffff9a1c: operation ost_write to node 10.1.0.7@tcp failed: rc = -107',
      'preset.checkpoint.storage-write-error',
    ],
    [
      'checkpoint',
      '[NeMo E 2026-03-04 03:40:00 callbacks:211] Failed to save checkpoint at step 2000: [Errno 13] Permission denied',
      'preset.checkpoint.save-failed',
    ],
    [
      'checkpoint',
      'torch.distributed.checkpoint.api.CheckpointException: CheckpointException ranks:dict_keys([0, 3])',
      'preset.checkpoint.save-failed',
    ],
    [
      'agent',
      'ERROR:torch.distributed.elastic.multiprocessing.api:failed (exitcode: 1) local_rank: 0 (pid: 2345) of binary: /usr/bin/python3',
      'preset.agent.worker-failed',
    ],
  ])('preset %s reports %j as %s', (preset, text, expected) => {
    const c = compileRules(loadPresetRules([preset]));
    const { findings } = evaluateLines(
      c,
      initialRuleState(c, 0, 0),
      [{ stream: 's', timestamp: 1, text }],
      1,
    );
    expect(findings.map((f) => f.rule)).toEqual([expected]);
  });

  it.each([
    ['NCCL WARN NET/OFI Only EFA provider is supported'],
    ['NCCL INFO NCCL_ASYNC_ERROR_HANDLING set by environment to 1'],
    ['retries on CUDA error: 0'],
    ['NVRM: Xid (PCI:0000:53:00): 13, pid=24519, name=python, Graphics Exception'],
    ['NVRM: Xid (PCI:0000:53:00): 63, pid=0, Row Remapper: New row marked for remapping'],
    ['Saving model checkpoint to /fsx/runs/checkpoint-2000'],
    [
      'torch.distributed.elastic.multiprocessing.redirects: [WARNING] NOTE: Redirects are currently not supported',
    ],
    ['Using memory-efficient attention (xformers MemoryEfficientAttentionFlashAttentionOp)'],
  ])('no preset reports the benign line %j', (text) => {
    const c = compileRules(loadPresetRules(PRESET_NAMES));
    const { findings } = evaluateLines(
      c,
      initialRuleState(c, 0, 0),
      [{ stream: 's', timestamp: 1, text }],
      1,
    );
    expect(findings).toEqual([]);
  });

  it('effectiveRules puts the user rules first, then the selected presets', () => {
    const spec = {
      runPolicy: { logMonitoringConfiguration: [rule({ name: 'JobStart', logPattern: '.*started' })] },
      trainkeeper: { presets: ['oom'] },
    } as unknown as JobSpec;
    expect(effectiveRules(spec).map((r) => r.name)).toEqual([
      'JobStart',
      'preset.oom.cuda-oom',
      'preset.oom.host-oom',
    ]);
  });

  it('an empty preset list opts out and an unknown preset is an error', () => {
    expect(loadPresetRules([])).toEqual([]);
    expect(() => loadPresetRules(['nope'])).toThrow(/unknown rule preset "nope"/);
  });
});

describe('parseKubectlLog', () => {
  it('strips timestamps and worker prefixes, inherits the previous time and skips agent records', () => {
    const text = [
      '2026-03-01T10:00:00.123456789Z [default2]:hello',
      'continued without a stamp',
      '2026-03-01T10:00:01+00:00 launcher line',
      '2026-03-01T10:00:02.5Z {"trainkeeper":"agent/v1","ts":"x","generation":0,"state":"RUNNING","kind":"heartbeat"}',
      '',
    ].join('\n');
    const log = parseKubectlLog(text, 'pod.log');
    expect(log.firstTimestamp).toBe(Date.parse('2026-03-01T10:00:00.123Z'));
    expect(log.agentRecords).toBe(1);
    expect(log.lines).toEqual([
      {
        stream: 'pod.log/2',
        rank: 2,
        localRank: 2,
        timestamp: Date.parse('2026-03-01T10:00:00.123Z'),
        text: 'hello',
        lineNumber: 1,
      },
      {
        stream: 'pod.log',
        timestamp: Date.parse('2026-03-01T10:00:00.123Z'),
        text: 'continued without a stamp',
        lineNumber: 2,
      },
      {
        stream: 'pod.log',
        timestamp: Date.parse('2026-03-01T10:00:01Z'),
        text: 'launcher line',
        lineNumber: 3,
      },
    ]);
  });

  it('skips lines that claim to be agent records but do not parse, and counts them apart', () => {
    const log = parseKubectlLog(
      [
        '2026-03-01T10:00:00Z {"trainkeeper":"agent/v1","kind":"heartbeat"}',
        '2026-03-01T10:00:01Z   {"trainkeeper": "agent/v1", "ts": "x", "generation": 1, "state": "READY", "kind": "state"}',
        '2026-03-01T10:00:02Z {"loss": 1.5}',
      ].join('\n'),
      'pod.log',
    );
    expect([log.agentRecords, log.invalidAgentRecords]).toEqual([1, 1]);
    expect(log.lines.map((l) => l.text)).toEqual(['{"loss": 1.5}']);
  });

  it('counts lines before the first timestamp', () => {
    const log = parseKubectlLog('no stamp\n2026-03-01T10:00:00Z x\n', 'f');
    expect([log.unstamped, log.lines.length]).toEqual([1, 1]);
  });
});
