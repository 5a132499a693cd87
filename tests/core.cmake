# The core: wire format unit tests and MPI scenarios (tests/mpi_core.c).
gd_add_unit_test(test_wire ${CMAKE_CURRENT_SOURCE_DIR}/test_wire.c)
gd_add_unit_test(test_journal ${CMAKE_CURRENT_SOURCE_DIR}/test_journal.c)

add_executable(mpi_core ${CMAKE_CURRENT_SOURCE_DIR}/mpi_core.c)
target_link_libraries(mpi_core PRIVATE gpudispatch)

foreach(n 2 3 5)
  gd_add_mpi_test(core_basic_np${n} ${n} mpi_core basic)
endforeach()
gd_add_mpi_test(core_basic_w1 3 mpi_core basic 1)
gd_add_mpi_test(core_basic_w16 3 mpi_core basic 16)
foreach(sc faults setup_fail_one setup_fail_all zero big generator_error retry stop bad_args inline
           retry_w1 generator_error_retry stop_in_cleanup big_crash fork_crash big_abort empty
           stdio_flush big_mpi big_crash_mpi big_path big_path_mpi big_path_inline big_retry
           big_abort_mpi lazy_crash enomem_start spread_start spread_end)
  gd_add_mpi_test(core_${sc} 3 mpi_core ${sc})
endforeach()
gd_add_mpi_test(core_faults_np2 2 mpi_core faults)
gd_add_mpi_test(core_setup_fail_all_np5 5 mpi_core setup_fail_all)
gd_add_mpi_test(core_no_worker 1 mpi_core no_worker)
add_test(NAME core_journal_kill_resume
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/journal_kill.sh $<TARGET_FILE:mpi_core>)
set_tests_properties(core_journal_kill_resume PROPERTIES ENVIRONMENT "${GD_TEST_ENV}" TIMEOUT 120
  LABELS mpi)
