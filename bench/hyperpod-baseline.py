"""HyperPod-style log-rule evaluation in Python, the baseline of `npm run bench -- rules`.

What HyperPod's agent (`LogEvaluator`) does per line and rule: `re.match` of the rule's logPattern,
`float()` of group 1 for metric rules with a consecutive-points counter, `stopPattern` ending the rule,
`faultOnMatch` faulting. Usage: hyperpod-baseline.py RULES.json KUBECTL.log (one `STAMP text` line
per log line, as `kubectl logs --timestamps` writes). Prints `lines matches faults` on stdout.
"""

import json
import operator
import re
import sys

OPS = {"gt": operator.gt, "gteq": operator.ge, "lt": operator.lt, "lteq": operator.le, "eq": operator.eq}


class Rule:
    def __init__(self, r):
        self.pattern = re.compile(r["logPattern"])
        self.stop = re.compile(r["stopPattern"]) if r.get("stopPattern") else None
        op = r.get("operator")
        self.compare = OPS[op] if op is not None and r.get("metricThreshold") is not None else None
        self.threshold = r.get("metricThreshold")
        self.points = r.get("metricEvaluationDataPoints", 1)
        self.fault_on_match = r.get("faultOnMatch", False)
        self.stopped = False
        self.slow = 0


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        rules = [Rule(r) for r in json.load(f)]
    lines = matches = faults = 0
    with open(sys.argv[2], encoding="utf-8") as f:
        for raw in f:
            _, _, text = raw.rstrip("\n").partition(" ")
            lines += 1
            for r in rules:
                if r.stopped:
                    continue
                m = r.pattern.match(text)
                if m:
                    matches += 1
                    if r.fault_on_match:
                        faults += 1
                        continue
                if r.stop is not None and r.stop.match(text):
                    r.stopped = True
                    continue
                if m and r.compare is not None and m.lastindex:
                    try:
                        value = float(m.group(1))
                    except (TypeError, ValueError):
                        continue
                    r.slow = min(r.slow + 1, r.points) if r.compare(value, r.threshold) else 0
    print(lines, matches, faults)


if __name__ == "__main__":
    main()
