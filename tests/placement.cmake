# GPU placement (issue 3): unit tests on the fake topologies and whole MPI
# runs with HWLOC_XMLFILE pointing at a fake node.
get_filename_component(GD_TOPO_DIR "${CMAKE_SOURCE_DIR}/../shared/topologies" ABSOLUTE)

gd_add_unit_test(test_placement test_placement.c)
target_compile_definitions(test_placement PRIVATE GD_TOPOLOGIES_DEFAULT="${GD_TOPO_DIR}")
target_link_libraries(test_placement PRIVATE PkgConfig::HWLOC ${CMAKE_DL_LIBS})

add_executable(mpi_placement mpi_placement.c)
target_include_directories(mpi_placement PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(mpi_placement PRIVATE gpudispatch_internal PkgConfig::HWLOC ${CMAKE_DL_LIBS})

# gd_placement_mpi_test(NAME NPROCS PRESET [MODE]): mpi_placement on the fake
# node node-PRESET.xml; every rank (and mpiexec) sees it through HWLOC_XMLFILE.
# Under GD_SANITIZE, LeakSanitizer would report Open MPI's own allocations at
# exit; the placement code's leaks are covered by test_placement.
set(GD_PLACEMENT_MPI_ENV ${GD_TEST_ENV})
if(GD_SANITIZE)
  list(APPEND GD_PLACEMENT_MPI_ENV ASAN_OPTIONS=detect_leaks=0)
endif()
function(gd_placement_mpi_test name nprocs preset)
  gd_add_mpi_test(${name} ${nprocs} mpi_placement ${preset} ${ARGN})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "${GD_PLACEMENT_MPI_ENV};HWLOC_XMLFILE=${GD_TOPO_DIR}/node-${preset}.xml"
    LABELS "mpi;placement")
endfunction()

gd_placement_mpi_test(mpi_placement_2s8gpu_9 9 2s-8gpu)       # 8 workers -> 8 GPUs
gd_placement_mpi_test(mpi_placement_2s8gpu_3 3 2s-8gpu)
gd_placement_mpi_test(mpi_placement_1s2gpu_3 3 1s-2gpu)
gd_placement_mpi_test(mpi_placement_1s2gpu_toomany_4 4 1s-2gpu toomany) # 3 workers, 2 GPUs
