# Tests of the `gpudispatch` command (src/cli): CUnit tests of its pure parts
# and end-to-end runs through mpiexec (tests/cli_*.sh).  The Slurm test
# (tests/slurm_test.sh) needs root and a local Slurm: scripts/test.sh runs it.
# test_cli_tasks compiles the command's pure parts (no MPI) directly.
gd_add_unit_test(test_cli_tasks ${CMAKE_CURRENT_SOURCE_DIR}/test_cli_tasks.c
                 ${CMAKE_SOURCE_DIR}/src/cli/buf.c ${CMAKE_SOURCE_DIR}/src/cli/options.c
                 ${CMAKE_SOURCE_DIR}/src/cli/task_source.c
                 ${CMAKE_SOURCE_DIR}/src/cli/template.c ${CMAKE_SOURCE_DIR}/src/cli/json.c
                 ${CMAKE_SOURCE_DIR}/src/cli/error_text.c
                 ${CMAKE_SOURCE_DIR}/src/cli/setup_args.c ${CMAKE_SOURCE_DIR}/src/jsonw.c)
target_include_directories(test_cli_tasks PRIVATE ${CMAKE_SOURCE_DIR}/ui)

foreach(t cli_run cli_worker cli_usage cli_framed cli_python cli_results cli_halt cli_status
          cli_deadline cli_safety)
  add_test(NAME ${t} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/${t}.sh)
  set_tests_properties(${t} PROPERTIES
    ENVIRONMENT "${GD_TEST_ENV};GD_CLI=$<TARGET_FILE:gpudispatch-cli>;GD_MPIEXEC=${MPIEXEC_EXECUTABLE}"
    TIMEOUT 180 LABELS "cli;mpi")
endforeach()

# The demo's PNG (examples/mandelbrot.c): compressed, the picture unchanged.
if(TARGET mandelbrot)
  add_test(NAME demo_png COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/demo_png.sh $<TARGET_FILE:mandelbrot>)
  set_tests_properties(demo_png PROPERTIES
    ENVIRONMENT "${GD_TEST_ENV};GD_MPIEXEC=${MPIEXEC_EXECUTABLE}" TIMEOUT 180 LABELS "mpi")
endif()

# --gpus-per-worker on the fake nodes of ../shared/topologies
get_filename_component(GD_CLI_TOPO_DIR "${CMAKE_SOURCE_DIR}/../shared/topologies" ABSOLUTE)
add_test(NAME cli_gpus_per_worker COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_gpus_per_worker.sh)
set_tests_properties(cli_gpus_per_worker PROPERTIES
  ENVIRONMENT "${GD_TEST_ENV};GD_CLI=$<TARGET_FILE:gpudispatch-cli>;GD_MPIEXEC=${MPIEXEC_EXECUTABLE};GD_TOPO_DIR=${GD_CLI_TOPO_DIR}"
  TIMEOUT 600 LABELS "cli;mpi;placement")

add_test(NAME cli_quarantine COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_quarantine.sh)
set_tests_properties(cli_quarantine PROPERTIES
  ENVIRONMENT "${GD_TEST_ENV};GD_CLI=$<TARGET_FILE:gpudispatch-cli>;GD_MPIEXEC=${MPIEXEC_EXECUTABLE}"
  TIMEOUT 300 LABELS "cli;mpi")
