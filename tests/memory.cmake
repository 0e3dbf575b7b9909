# The memory estimate against the measured peak (issue 7, docs/HARDENING.md): four runs of
# different shapes on 1, 2 and 4 ranks, each checked within 15% and against --dry-run.
ntk_add_py_test(memory test_memory.py)
