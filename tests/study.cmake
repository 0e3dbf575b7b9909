# The study driver (tools/ntkspec-study): the quick study end to end into the build folder
# (every claim judged, every figure drawn, re-runs compute only missing points), and a
# small study through jobs/submit.sh study on the one-node SLURM cluster of test_slurm.py
# together with the full study's plan (exit 77 = skipped: not root, or no slurm-wlm).
ntk_add_py_test(study_quick test_study.py quick)
set_tests_properties(study_quick PROPERTIES PROCESSORS 2)
ntk_test_cost(study_quick 300)
ntk_add_py_test(study_slurm test_study.py slurm)
set_tests_properties(study_slurm PROPERTIES SKIP_RETURN_CODE 77 PROCESSORS 2 LABELS slurm)
ntk_test_cost(study_slurm 90)
