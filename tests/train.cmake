# Training dynamics, checkpoint and restart (issue 4): one Python driver, sections
# gradient metrics outputs lazy stability divergence masks sgd restart kill.  The lazy
# regime (1000 GD steps at widths 64 and 1024) is its own test; at widths 256 and 4096
# (sixteen times the cost) it is opt-in: cmake -DNTK_LONG_TESTS=ON.
ntk_add_py_test(train_core test_train.py gradient metrics outputs stability divergence masks sgd)
ntk_add_py_test(train_restart test_train.py restart kill)
ntk_add_py_test(train_lazy test_train.py lazy)
ntk_test_cost(train_lazy 60)
if(NTK_LONG_TESTS)
  ntk_add_py_test(train_lazy_4096 test_train.py lazy_long)
  ntk_test_cost(train_lazy_4096 300)
  set_tests_properties(train_lazy_4096 PROPERTIES LABELS long)
endif()
# Signals at random times through a timeout + mpirun wrapper (issue 22): 62 runs and resumes.
ntk_add_py_test(signals test_signals.py)
# The kernel-regime test-loss prediction (issue 20) against numpy's own Jacobian kernel,
# relu recursion and explicit linearised GD, to 1e-10; its lazy-regime agreement.
ntk_add_py_test(predict_test test_predict.py exact topk fourier lazy)
