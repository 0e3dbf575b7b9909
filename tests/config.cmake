# configuration module: table, YAML loader, --set, validation, printer, docs and examples
ntk_test_exe(test_config test_config.c)
target_compile_definitions(test_config PRIVATE NTK_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
ntk_add_mpi_test(config_np1 test_config 1)
