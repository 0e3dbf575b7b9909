ntk_test_exe(test_ntk test_ntk.c)
ntk_add_mpi_test(ntk_np1 test_ntk 1)
ntk_add_mpi_test(ntk_np2_2x1 test_ntk 2 2 1 2)
ntk_add_mpi_test(ntk_np2_1x2 test_ntk 2 1 2 3)
ntk_add_mpi_test(ntk_np4_2x2 test_ntk 4 2 2 2)
ntk_add_py_test(run_end_to_end test_run.py)
ntk_add_py_test(bad_input test_bad_input.py)
ntk_test_cost(bad_input 60)
# Every run of the bad-input table fails, and a failing mpirun waits about 2 s (Open MPI's
# odls_base_sigkill_timeout, 1 s) for ranks already gone: 0 here, where nothing is
# signalled (the signal tests need mpirun's grace period, docs/TRAINING.md).  The sanitizer
# build keeps the default: LeakSanitizer's check at exit needs its time in every rank.
if(NOT NTK_SANITIZE)
  set_tests_properties(bad_input PROPERTIES
                       ENVIRONMENT "${NTK_TEST_ENV};OMPI_MCA_odls_base_sigkill_timeout=0")
endif()
