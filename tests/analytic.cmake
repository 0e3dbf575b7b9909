# Analytic (infinite-width) kernel: dual activations (serial) and the distributed kernel.
ntk_test_exe(test_dual test_dual.c)
ntk_add_mpi_test(dual test_dual 1)

ntk_test_exe(test_analytic test_analytic.c)
ntk_add_mpi_test(analytic_np1 test_analytic 1)
ntk_add_mpi_test(analytic_np2 test_analytic 2)
ntk_add_mpi_test(analytic_np4 test_analytic 4)
ntk_add_mpi_test(analytic_np4_1x4 test_analytic 4 --rows 1 --cols 4)
ntk_add_mpi_test(analytic_np4_4x1 test_analytic 4 --rows 4 --cols 1)
