/**
 * NCCL / ProcessGroupNCCL faults: collective timeouts caught by PyTorch's watchdog, NCCL errors raised
 * into Python, and NCCL's own fatal network/transport warnings. Every rule is faultOnMatch: the process
 * group is broken and only a restart recovers it.
 */
import type { LogRuleInput } from '../../core/spec/types.ts';

/** The `nccl` preset's rules, as written (named `preset.nccl.<name>` once loaded). */
export const rules: readonly LogRuleInput[] = [
  // c10d's watchdog, e.g. "[rank3]:[E ProcessGroupNCCL.cpp:563] [Rank 3] Watchdog caught collective
  // operation timeout: WorkNCCL(SeqNum=41872, OpType=ALLREDUCE, ...) ran for 600044 milliseconds before
  // timing out." (also repeated in the "terminate called ... what():" summary: same rule, one finding).
  {
    name: 'watchdog-timeout',
    logPattern: '.*Watchdog caught collective operation timeout',
    faultOnMatch: true,
  },
  // An NCCL result code raised into PyTorch: "torch.distributed.DistBackendError: NCCL error in:
  // ../torch/csrc/distributed/c10d/NCCLUtils.hpp:275, unhandled system error ..., NCCL version 2.18.1"
  // followed by the result's name and text ("ncclSystemError: System call (e.g. socket, malloc) ...").
  {
    name: 'nccl-error',
    logPattern: String.raw`.*(?:NCCL error(?: in)?:|nccl(?:Internal|System|Remote|UnhandledCuda|InvalidUsage|InvalidArgument)Error\b)`,
    faultOnMatch: true,
  },
  // NCCL's fatal transport warnings (NCCL_DEBUG=WARN or higher), e.g. "ip-10-1-2-3:231:911 [3]
  // transport/net_ib.cc:1295 NCCL WARN NET/IB : Got completion from peer 10.1.2.4<55512> with status=12
  // opcode=0 len=0 vendor err 129 (Recv)", the EFA plugin's "NCCL WARN NET/OFI Request 0x7f.. completed
  // with error", or "NCCL WARN socketProgress: Connection closed by remote peer". Configuration notices
  // printed as NCCL WARN (plugin/tuner fallbacks) are deliberately not faults.
  {
    name: 'net-error',
    logPattern: String.raw`.*NCCL WARN (?:NET/\S+ ?: ?Got completion from peer|NET/OFI .*completed with error|NET/IB : Got async event|Cuda failure|Call to \w+ failed|.*Connection (?:closed by remote peer|reset by peer|refused)|.*[Rr]emote process exited)`,
    faultOnMatch: true,
  },
];
