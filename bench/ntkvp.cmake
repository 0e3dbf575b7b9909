add_executable(bench_ntkvp ${CMAKE_CURRENT_LIST_DIR}/bench_ntkvp.c)
target_link_libraries(bench_ntkvp PRIVATE ntkcore)
