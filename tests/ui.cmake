# The dashboard layer (issue 4).
#  test_ui          the model, keys, text output, and the renderer drawn into
#                   an ncurses screen from fixed statistics (no MPI)
#  ui_tmux_*        the dashboard on a real terminal (tmux): with a stand-in
#                   core (no MPI), and a real mpirun of examples/basic_dashboard
gd_add_unit_test(test_ui ${CMAKE_CURRENT_SOURCE_DIR}/test_ui.c)
set_property(TEST test_ui APPEND PROPERTY LABELS ui)

# The stand-in core: its gd_run() replaces the library's (run.o is not
# pulled from the static library since nothing else needs it); the UI
# library reaches the core through gd_run() only.
add_executable(ui_fake_core ${CMAKE_CURRENT_SOURCE_DIR}/ui_fake_core.c)
target_include_directories(ui_fake_core PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/ui)
target_link_libraries(ui_fake_core PRIVATE gpudispatch_ui_internal)

# The UI thread lowers its own priority to nice 19 and nothing else's (text
# mode: no terminal needed).
add_test(NAME ui_thread_nice COMMAND ui_fake_core 2 40 20 text)
set_tests_properties(ui_thread_nice PROPERTIES ENVIRONMENT "${GD_TEST_ENV};UI_FAKE_NICE=1" TIMEOUT 60
                     LABELS ui PASS_REGULAR_EXPRESSION "ui_thread_nice=19 caller_nice_kept=1")

set(GD_UI_TMUX ${CMAKE_CURRENT_SOURCE_DIR}/ui_tmux.sh)
# Under GD_SANITIZE, LeakSanitizer would report Open MPI's own allocations
# (from unloaded components, which suppressions cannot name) and push the
# summary out of the pane; the UI's leaks are covered by test_ui and the
# stand-in core's runs, which keep leak detection on.
set(GD_UI_MPI_ENV ${GD_TEST_ENV})
if(GD_SANITIZE)
  list(APPEND GD_UI_MPI_ENV ASAN_OPTIONS=detect_leaks=0)
endif()

# gd_add_ui_tmux_test(NAME ENV_LIST SCENARIO PROGRAM ARGS...)
function(gd_add_ui_tmux_test name envlist scenario)
  add_test(NAME ${name} COMMAND ${GD_UI_TMUX} ${scenario} ${ARGN})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "${${envlist}}" TIMEOUT 180
                       SKIP_RETURN_CODE 77 LABELS "ui;tmux" RUN_SERIAL TRUE)
endfunction()

# workers tasks task_ms mode refresh_hz
gd_add_ui_tmux_test(ui_tmux_dashboard GD_TEST_ENV dashboard $<TARGET_FILE:ui_fake_core> 12 1200 100 auto 10)
gd_add_ui_tmux_test(ui_tmux_quit GD_TEST_ENV quit $<TARGET_FILE:ui_fake_core> 8 2000 300 tui 10)
gd_add_ui_tmux_test(ui_tmux_interrupt GD_TEST_ENV interrupt $<TARGET_FILE:ui_fake_core> 8 2000 300 tui 10)
gd_add_ui_tmux_test(ui_tmux_text GD_TEST_ENV text $<TARGET_FILE:ui_fake_core> 4 40 100 auto)
gd_add_ui_tmux_test(ui_tmux_notty GD_TEST_ENV notty $<TARGET_FILE:ui_fake_core> 4 40 100 auto)
gd_add_ui_tmux_test(ui_tmux_resignal GD_TEST_ENV resignal $<TARGET_FILE:ui_fake_core> 4 200 50 tui 10)

# The real thing: mpirun -n 3 of the basic example on a tmux terminal.
if(TARGET basic_dashboard)
  set(GD_UI_MPIRUN ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 3 ${GD_MPIEXEC_FLAGS})
  # tasks task_ms
  gd_add_ui_tmux_test(ui_tmux_mpi_dashboard GD_UI_MPI_ENV dashboard ${GD_UI_MPIRUN}
                      $<TARGET_FILE:basic_dashboard> 120 100)
  gd_add_ui_tmux_test(ui_tmux_mpi_quit GD_UI_MPI_ENV quit ${GD_UI_MPIRUN}
                      $<TARGET_FILE:basic_dashboard> 2000 300)
  gd_add_ui_tmux_test(ui_tmux_mpi_notty GD_UI_MPI_ENV notty ${GD_UI_MPIRUN}
                      $<TARGET_FILE:basic_dashboard> 250 50)
endif()
