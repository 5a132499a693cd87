# The core: unit tests of the wire format, journal, shared memory, window,
# termination, ring and error conventions, and the MPI scenarios, one
# executable per feature (tests/mpi_FEATURE.c, each with a table of named
# scenarios) sharing the test worker and helpers of tests/mpi_common.c.
gd_add_unit_test(test_wire ${CMAKE_CURRENT_SOURCE_DIR}/test_wire.c)
gd_add_unit_test(test_journal ${CMAKE_CURRENT_SOURCE_DIR}/test_journal.c)
gd_add_unit_test(test_shm ${CMAKE_CURRENT_SOURCE_DIR}/test_shm.c)
# the dispatcher's policies, without MPI
gd_add_unit_test(test_window ${CMAKE_CURRENT_SOURCE_DIR}/test_window.c)
gd_add_unit_test(test_termination ${CMAKE_CURRENT_SOURCE_DIR}/test_termination.c)
gd_add_unit_test(test_ring ${CMAKE_CURRENT_SOURCE_DIR}/test_ring.c)
gd_add_unit_test(test_errors ${CMAKE_CURRENT_SOURCE_DIR}/test_errors.c)

add_library(mpi_common STATIC ${CMAKE_CURRENT_SOURCE_DIR}/mpi_common.c)
target_include_directories(mpi_common PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(mpi_common PUBLIC gpudispatch)

# gd_add_mpi_feature(FEATURE [SCENARIO...]): the executable mpi_FEATURE
# from mpi_FEATURE.c, and a test core_SCENARIO on 3 ranks for each SCENARIO.
function(gd_add_mpi_feature feature)
  add_executable(mpi_${feature} ${CMAKE_CURRENT_SOURCE_DIR}/mpi_${feature}.c)
  target_link_libraries(mpi_${feature} PRIVATE mpi_common)
  foreach(sc ${ARGN})
    gd_add_mpi_test(core_${sc} 3 mpi_${feature} ${sc})
  endforeach()
endfunction()

gd_add_mpi_feature(basic zero inline empty stdio_flush)
gd_add_mpi_feature(faults faults fork_crash lazy_crash)
gd_add_mpi_feature(setup setup_fail_one setup_fail_all enomem_start)
gd_add_mpi_feature(large big big_crash big_abort big_mpi big_crash_mpi big_path big_path_mpi
                   big_path_inline big_retry big_abort_mpi)
gd_add_mpi_feature(retry retry retry_w1)
gd_add_mpi_feature(generator generator_error generator_error_retry)
gd_add_mpi_feature(stop stop stop_in_cleanup)
gd_add_mpi_feature(args bad_args)
gd_add_mpi_feature(spread spread_start spread_end)
gd_add_mpi_feature(journal)
gd_add_mpi_feature(observers observers no_ticks log exit_fields sizes)

# the same scenarios on other rank counts and windows
foreach(n 2 3 5)
  gd_add_mpi_test(core_basic_np${n} ${n} mpi_basic basic)
endforeach()
gd_add_mpi_test(core_basic_w1 3 mpi_basic basic 1)
gd_add_mpi_test(core_basic_w16 3 mpi_basic basic 16)
gd_add_mpi_test(core_faults_np2 2 mpi_faults faults)
gd_add_mpi_test(core_setup_fail_all_np5 5 mpi_setup setup_fail_all)
gd_add_mpi_test(core_no_worker 1 mpi_args no_worker)
add_test(NAME core_journal_kill_resume
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/journal_kill.sh $<TARGET_FILE:mpi_journal>)
set_tests_properties(core_journal_kill_resume PROPERTIES ENVIRONMENT "${GD_TEST_ENV}" TIMEOUT 120
  LABELS mpi)
