add_executable(bench_ntk ${CMAKE_CURRENT_LIST_DIR}/bench_ntk.c)
target_link_libraries(bench_ntk PRIVATE ntkcore)
