# The matrix-free NTK product against the dense kernel, on every grid shape of 1, 2, 4 ranks.
ntk_test_exe(test_ntkvp test_ntkvp.c)
ntk_add_mpi_test(ntkvp_np1 test_ntkvp 1)
ntk_add_mpi_test(ntkvp_np2_1x2 test_ntkvp 2 1 2 4)
ntk_add_mpi_test(ntkvp_np2_2x1 test_ntkvp 2 2 1 3)
ntk_add_mpi_test(ntkvp_np4_1x4 test_ntkvp 4 1 4 3)
ntk_add_mpi_test(ntkvp_np4_4x1 test_ntkvp 4 4 1 4)
ntk_add_mpi_test(ntkvp_np4_2x2 test_ntkvp 4 2 2 3)
