# The dashboard's cost on the dispatcher (issue 4): bench_dashboard runs the
# same tiny-task workload with the dashboard on (10 refreshes/s) and off,
# interleaved; bench_dashboard.sh gives it a terminal (tmux) when needed.
add_executable(bench_dashboard ${CMAKE_CURRENT_SOURCE_DIR}/bench_dashboard.c)
target_link_libraries(bench_dashboard PRIVATE gpudispatch gpudispatch_ui m)
