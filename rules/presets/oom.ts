/**
 * Out of memory, on the GPU (PyTorch's caching allocator) or on the host (Python's MemoryError).
 */
import type { LogRuleInput } from '../../core/spec/types.ts';

/** The `oom` preset's rules, as written (named `preset.oom.<name>` once loaded). */
export const rules: readonly LogRuleInput[] = [
  // "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity
  // of 79.15 GiB of which 1.06 GiB is free." (torch >= 2.5), "torch.cuda.OutOfMemoryError: CUDA out of
  // memory. ..." (1.13-2.4), "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; ...)"
  // (older), and the allocator's "RuntimeError: CUDA error: out of memory".
  {
    name: 'cuda-oom',
    logPattern: '.*(?:CUDA out of memory|OutOfMemoryError|CUDA error: out of memory)',
    faultOnMatch: true,
  },
  // Host memory: "MemoryError" alone (a traceback's last line) or "numpy.core._exceptions._ArrayMemoryError:
  // Unable to allocate 3.73 GiB ..."/"MemoryError: Unable to allocate ...". Not "OutOfMemoryError".
  {
    name: 'host-oom',
    logPattern: '(?:.*[^A-Za-z_])?(?:MemoryError|_ArrayMemoryError)(?::|$)',
    faultOnMatch: true,
  },
];
