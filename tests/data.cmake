# rng and data modules
ntk_test_exe(test_rng test_rng.c)
add_test(NAME rng COMMAND test_rng)
set_tests_properties(rng PROPERTIES ENVIRONMENT "${NTK_TEST_ENV}" TIMEOUT ${NTK_TIMEOUT_MIN})

# test_data ROWS COLS NB: every source at 1, 2 and 4 ranks and on 1x4 / 4x1 grids; small
# block sizes so that even 40 rows are spread block-cyclically over all grid rows.
ntk_test_exe(test_data test_data.c)
ntk_add_mpi_test(data_np1 test_data 1 0 0 4)
ntk_add_mpi_test(data_np2 test_data 2 0 0 3)
ntk_add_mpi_test(data_np4 test_data 4 0 0 4)
ntk_add_mpi_test(data_np4_1x4 test_data 4 1 4 3)
ntk_add_mpi_test(data_np4_4x1 test_data 4 4 1 5)

# tools/ntkspec-uci: the UCI sets from python3-sklearn, their split and standardisation,
# and one short run of each configs/uci_*.yaml on its file.
ntk_add_py_test(uci test_uci.py)
