# The performance model (tools/perf_model.py, docs/SCALING.md): its flop counts against the
# ones ntkspec records on 1, 2 and 4 ranks, its grid against ntkspec's, calibrate and predict.
ntk_add_py_test(perf_model_py test_perf_model.py)
