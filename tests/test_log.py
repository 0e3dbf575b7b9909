#!/usr/bin/python3
"""Warnings of several ranks on one stderr: every line is one whole warning (issue 22).

tests/log_lines.c makes 4 ranks print 60 warnings each at the same time; mpirun merges
their stderr.  Each line must be exactly one warning, and every warning of every rank must
be there once.  Ten launches: with the old three writes per warning, two or more of
ten launches had mixed lines in every trial."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntkharness as h  # noqa: E402

EXE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("NTK_BUILD_DIR", "build"), "tests", "log_lines")
RANKS, LINES, LAUNCHES = 4, 60, 10
LINE = re.compile(r"^ntkspec: warning \[rank (\d+)\]: line (\d+) x{20} end$")


def main():
    t = h.Report()
    for launch in range(LAUNCHES):
        p = subprocess.run(["mpirun", "-q", "-np", str(RANKS), EXE], capture_output=True,
                           text=True, timeout=600)
        t.check(p.returncode == 0, "log_lines exit status %d: %s" % (p.returncode, p.stderr[-500:]))
        seen, bad = set(), []
        for line in p.stderr.splitlines():
            m = LINE.match(line)
            if not m:
                bad.append(line)
                continue
            seen.add((int(m.group(1)), int(m.group(2))))
        t.check(not bad, "launch %d: %d stderr line(s) are not one whole warning, e.g. %r"
                % (launch, len(bad), bad[:1]))
        t.check(len(seen) == RANKS * LINES,
                "launch %d: %d distinct warnings, expected %d" % (launch, len(seen), RANKS * LINES))
    sys.exit(t.finish())


if __name__ == "__main__":
    main()
