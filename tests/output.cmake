# ntk_output: parallel HDF5 writes from block-cyclic grids (odd shapes, partial blocks,
# ranks owning nothing), read back with the C API, and with h5py by the Python test.
ntk_test_exe(test_output test_output.c)
ntk_add_mpi_test(output_np1 test_output 1 1 1 2)
ntk_add_mpi_test(output_np2 test_output 2 2 1 3)
ntk_add_mpi_test(output_np4 test_output 4 2 2 2)
ntk_add_mpi_test(output_np4_nb3 test_output 4 2 2 3)
ntk_add_mpi_test(output_np4_1x4 test_output 4 1 4 2)
ntk_add_mpi_test(output_np4_4x1 test_output 4 4 1 3)
ntk_add_py_test(output_h5py test_output_read.py)
# The file format's schema (`ntkspec schema` = tools/ntk_schema.json = docs/OUTPUT.md), the
# output lock (concurrent runs and resumes), the refusal of non-regular and aliased paths,
# --resume of a complete run, info on a checkpoint, an early-killed PATH.partial.
ntk_add_py_test(output_schema test_output_file.py schema)
ntk_add_py_test(output_lock test_output_file.py lock)
ntk_add_py_test(output_refuse test_output_file.py refuse resume)
