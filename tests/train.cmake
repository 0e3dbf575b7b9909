# Training dynamics, checkpoint and restart (issue 4): one Python driver, sections
# gradient metrics outputs lazy stability divergence masks sgd restart kill; the lazy
# regime at width 4096 is the slow one (1000 GD steps), so it is its own test.
ntk_add_py_test(train_core test_train.py gradient metrics outputs stability divergence masks sgd)
ntk_add_py_test(train_restart test_train.py restart kill)
ntk_add_py_test(train_lazy test_train.py lazy)
# Signals at random times through a timeout + mpirun wrapper (issue 22): 62 runs and resumes.
ntk_add_py_test(signals test_signals.py)
