ntk_test_exe(test_limit test_limit.c)
ntk_add_mpi_test(limit_64_seeds_width_2048 test_limit 2)
ntk_add_py_test(sweep_slope test_sweep.py)
