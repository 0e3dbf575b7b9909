# Analytic kernel throughput (not a test): kernel entries per second per core.
add_executable(bench_analytic ${CMAKE_CURRENT_SOURCE_DIR}/bench_analytic.c)
target_link_libraries(bench_analytic PRIVATE ntkcore)
