# ntk.method matrix_free end to end (issue 18): matrix-free top-16 against the dense
# kernel's for relu, tanh, gelu, stochastic depth and trainable Fourier features at N = 128
# on 1, 2 and 4 ranks, a training run, SIGTERM and --resume, refusals, the memory refusal's way out.  At the
# issue's N = 2048 it is opt-in: cmake -DNTK_LONG_TESTS=ON.
ntk_add_py_test(matrix_free test_matrix_free.py eigen train resume refuse memory)
ntk_test_cost(matrix_free 60)
if(NTK_LONG_TESTS)
  ntk_add_py_test(matrix_free_2048 test_matrix_free.py eigen_long)
  ntk_test_cost(matrix_free_2048 300)
  set_tests_properties(matrix_free_2048 PROPERTIES LABELS long)
endif()
