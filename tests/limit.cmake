# The infinite-width limit (tests/test_limit.c): the 64-seed mean of the empirical NTK at
# width 1024 against Theta_inf in 48 configurations, a t-test per kernel entry.  About
# 2 minutes on two quiet cores (both ranks busy throughout).  The same test at width 2048
# (a resolution of about 4% instead of 5.5% in the worst configuration, four times the
# cost) is opt-in: cmake -DNTK_LONG_TESTS=ON.
ntk_test_exe(test_limit test_limit.c)
ntk_add_mpi_test(limit_64_seeds_width_1024 test_limit 2 64 1024)
ntk_test_cost(limit_64_seeds_width_1024 120)
if(NTK_LONG_TESTS)
  ntk_add_mpi_test(limit_64_seeds_width_2048 test_limit 2 64 2048)
  ntk_test_cost(limit_64_seeds_width_2048 480)
  set_tests_properties(limit_64_seeds_width_2048 PROPERTIES LABELS long)
endif()
ntk_add_py_test(sweep_slope test_sweep.py)
ntk_test_cost(sweep_slope 30)
