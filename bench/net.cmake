# the transport's latency and bandwidth between two ranks (scripts/shaped-scaling.sh)
add_executable(bench_pingpong ${CMAKE_CURRENT_LIST_DIR}/bench_pingpong.c)
target_link_libraries(bench_pingpong PRIVATE MPI::MPI_C)
