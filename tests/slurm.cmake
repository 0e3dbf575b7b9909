# Job scripts (jobs/) through sbatch on a one-node SLURM cluster started by the test itself
# (slurmctld + slurmd, Debian slurm-wlm).  Exit 77 = skipped (not root, or no slurm-wlm).
ntk_add_py_test(slurm_jobs test_slurm.py)
set_tests_properties(slurm_jobs PROPERTIES SKIP_RETURN_CODE 77 PROCESSORS 2 LABELS slurm)
# above the test's own deadline for its jobs (test_slurm.py DEADLINE_S)
ntk_test_cost(slurm_jobs 150)
