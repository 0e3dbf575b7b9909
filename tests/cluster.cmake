# Job scripts across hosts (issue 17): a 5-host SLURM cluster of network namespaces
# (scripts/testcluster.sh) started by the test itself; jobs, a network partition and a
# node failure.  Exit 77 = skipped (not root, no slurm-wlm, no network namespaces).
ntk_add_py_test(cluster_jobs test_cluster.py)
set_tests_properties(cluster_jobs PROPERTIES SKIP_RETURN_CODE 77 PROCESSORS 2 LABELS slurm)
ntk_test_cost(cluster_jobs 180)
# section fence's probe: is a PMIx fence without data a barrier across hosts?
add_executable(ntk_fence_probe fence_probe.c)
target_link_libraries(ntk_fence_probe PRIVATE MPI::MPI_C)
set_property(TEST cluster_jobs APPEND PROPERTY ENVIRONMENT "NTK_FENCE_PROBE=$<TARGET_FILE:ntk_fence_probe>")
