# The benchmark suite of issue 7 (scripts/bench.sh runs it; docs/bench.md).
# bench_dispatch is a gpudispatch program; raw_echo and textbook are the
# plain-MPI baselines; usleep_cost measures what a sleeping task really takes.
add_executable(bench_dispatch ${CMAKE_CURRENT_SOURCE_DIR}/bench_dispatch.c)
target_link_libraries(bench_dispatch PRIVATE gpudispatch gpudispatch_ui)

add_executable(raw_echo ${CMAKE_CURRENT_SOURCE_DIR}/raw_echo.c)
target_link_libraries(raw_echo PRIVATE MPI::MPI_C)

add_executable(textbook ${CMAKE_CURRENT_SOURCE_DIR}/textbook.c)
target_link_libraries(textbook PRIVATE MPI::MPI_C)

add_executable(usleep_cost ${CMAKE_CURRENT_SOURCE_DIR}/usleep_cost.c)
