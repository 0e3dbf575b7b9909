add_executable(bench_eig ${CMAKE_CURRENT_LIST_DIR}/bench_eig.c)
target_link_libraries(bench_eig PRIVATE ntkcore)
