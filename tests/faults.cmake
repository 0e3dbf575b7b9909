# Fault injection and the memory limit (issue 7, docs/HARDENING.md): one Python driver,
# sections memory kill checkpoint config output.
ntk_add_py_test(faults test_faults.py)
ntk_test_cost(faults 60)
