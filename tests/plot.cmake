# results: `ntkspec info` (src/app/ntk_app_info.c) and the plot tool (tools/ntkspec-plot), end to end
# on the quickstart output, partial, sweep and non-ntkspec files and a scaling report.
ntk_add_py_test(info_py test_info.py)
ntk_test_cost(info_py 30)
ntk_add_py_test(plot_py test_plot.py)
