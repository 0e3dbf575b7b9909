# ntk.method matrix_free end to end (issue 18): matrix-free top-16 against the dense
# kernel's for relu, tanh, gelu, stochastic depth and trainable Fourier features at N = 128
# on 1, 2 and 4 ranks, a training run, --stop-at and --resume, the Hutchinson estimate of
# ||Theta||_F, refusals, the memory
# refusal's way out; and at the issue's N = 2048 on 2 ranks (matrix_free_2048, about a
# minute; left out of the sanitizer suite, which runs the same paths at N = 128).
ntk_add_py_test(matrix_free test_matrix_free.py eigen train resume hutchinson refuse memory)
ntk_test_cost(matrix_free 60)
ntk_add_py_test(matrix_free_2048 test_matrix_free.py eigen_long)
ntk_test_cost(matrix_free_2048 60)
