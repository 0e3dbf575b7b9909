# process grid and distributed matrices: every grid shape of 1, 2 and 4 ranks
ntk_test_exe(test_grid test_grid.c)
ntk_add_mpi_test(grid_np1_1x1 test_grid 1 1 1)
ntk_add_mpi_test(grid_np2_2x1 test_grid 2 2 1)
ntk_add_mpi_test(grid_np2_1x2 test_grid 2 1 2)
ntk_add_mpi_test(grid_np4_2x2 test_grid 4 2 2)
ntk_add_mpi_test(grid_np4_1x4 test_grid 4 1 4)
ntk_add_mpi_test(grid_np4_4x1 test_grid 4 4 1)
# grid.block_size 0 and the automatic grid: 24 samples on 1, 2 and 4 ranks, same spectrum
ntk_add_py_test(grid_auto test_grid_auto.py)
