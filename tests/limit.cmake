ntk_test_exe(test_limit test_limit.c)
ntk_add_mpi_test(limit_64_seeds_width_2048 test_limit 2)
# 64 seeds x 48 configurations at width 2048: about 8-10 minutes on 2 quiet cores while
# ctest runs other tests beside it, which is over the 600 s default of the MPI helper.
set_tests_properties(limit_64_seeds_width_2048 PROPERTIES TIMEOUT 1800)
ntk_add_py_test(sweep_slope test_sweep.py)
