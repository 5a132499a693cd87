# The installed tree and the Debian package.
#
# Relocatable: an installed tree (cmake --install build --prefix DIR) may be
# moved anywhere as a whole and keeps working:
# - the command finds its libraries through an $ORIGIN-relative RUNPATH,
#   the UI library finds the core the same way (no LD_LIBRARY_PATH);
# - gpudispatch.pc and gpudispatch_ui.pc compute their prefix from
#   ${pcfiledir}, and name no MPI package (consumers compile with the MPI's
#   own compiler wrapper, mpicc);
# - gpudispatchConfig.cmake and its targets file find the prefix from their
#   own location (imported targets gpudispatch::gpudispatch and
#   gpudispatch::gpudispatch_ui).

# RUNPATH: from bin/ to the libraries, and from a library to its neighbours.
# Only relative when the library directory is (GNUInstallDirs' default).
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(_gd_bin_rpath "${CMAKE_INSTALL_LIBDIR}")
  set(_gd_lib_rpath "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH _gd_bin_to_lib "/p/${CMAKE_INSTALL_BINDIR}" "/p/${CMAKE_INSTALL_LIBDIR}")
  set(_gd_bin_rpath "$ORIGIN/${_gd_bin_to_lib}")
  set(_gd_lib_rpath "$ORIGIN")
endif()
set_target_properties(gpudispatch-cli PROPERTIES INSTALL_RPATH "${_gd_bin_rpath}")
set_target_properties(gpudispatch gpudispatch_ui PROPERTIES INSTALL_RPATH "${_gd_lib_rpath}")
# RUNPATH (DT_RUNPATH), not the older DT_RPATH: LD_LIBRARY_PATH still wins
target_link_options(gpudispatch-cli PRIVATE LINKER:--enable-new-dtags)
target_link_options(gpudispatch PRIVATE LINKER:--enable-new-dtags)
target_link_options(gpudispatch_ui PRIVATE LINKER:--enable-new-dtags)

install(TARGETS gpudispatch gpudispatch_ui gpudispatch-cli EXPORT gpudispatchTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  PUBLIC_HEADER DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# CMake package: find_package(gpudispatch) gives gpudispatch::gpudispatch and
# gpudispatch::gpudispatch_ui (the command is gpudispatch::gpudispatch-cli).
set(_gd_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/gpudispatch)
# the MPI it was built with, which a consumer must find too: told apart by
# the library's name (MPICH and its derivatives link libmpich*)
if("${MPI_C_LIBRARIES}" MATCHES "mpich")
  set(GD_MPI_FLAVOR MPICH)
else()
  set(GD_MPI_FLAVOR "Open MPI")
endif()
install(EXPORT gpudispatchTargets NAMESPACE gpudispatch:: DESTINATION ${_gd_cmakedir})
configure_package_config_file(cmake/gpudispatchConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/gpudispatchConfig.cmake
  INSTALL_DESTINATION ${_gd_cmakedir})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/gpudispatchConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gpudispatchConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/gpudispatchConfigVersion.cmake
  DESTINATION ${_gd_cmakedir})

# pkg-config: prefix=${pcfiledir}/<the way back from the .pc's directory>
set(_gd_pcdir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(GD_PC_TO_PREFIX .)
  set(GD_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(GD_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH GD_PC_TO_PREFIX "/p/${_gd_pcdir}" "/p")
  string(REGEX REPLACE "/$" "" GD_PC_TO_PREFIX "${GD_PC_TO_PREFIX}")
  set(GD_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(GD_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(cmake/gpudispatch.pc.in ${CMAKE_CURRENT_BINARY_DIR}/gpudispatch.pc @ONLY)
configure_file(cmake/gpudispatch_ui.pc.in ${CMAKE_CURRENT_BINARY_DIR}/gpudispatch_ui.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gpudispatch.pc ${CMAKE_CURRENT_BINARY_DIR}/gpudispatch_ui.pc
  DESTINATION ${_gd_pcdir})

# Documents: the man page, bash completion, licence, changelog and the docs.
configure_file(docs/gpudispatch.1.in ${CMAKE_CURRENT_BINARY_DIR}/gpudispatch.1 @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/gpudispatch.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/share/bash-completion/completions/gpudispatch
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE
              ${PROJECT_SOURCE_DIR}/CHANGELOG.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/docs
  FILES_MATCHING PATTERN "*.md")

# ---------------------------------------------------------------- Debian package
# cpack -G DEB (in the build directory): one package with the command, the
# libraries, the headers, the CMake and pkg-config files and the documents,
# installed under /usr.  The libraries' dependencies come from dpkg-shlibdeps;
# the MPI launcher (mpirun) the command runs under is added by hand.
set(CPACK_PACKAGE_NAME gpudispatch)
set(CPACK_PACKAGE_VENDOR "the gpudispatch authors")
set(CPACK_PACKAGE_CONTACT "the gpudispatch authors <gpudispatch@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "spread a stream of tasks over the GPUs of a cluster with MPI")
set(CPACK_PACKAGE_DESCRIPTION
  "gpudispatch runs one task per line of a task file on the GPUs of an MPI job: one dispatcher rank, one worker rank per GPU, every finished task journaled so that an interrupted run resumes. This package holds the gpudispatch command, the C libraries libgpudispatch and libgpudispatch_ui with their headers, CMake and pkg-config files, the man page and bash completion.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _gd_mpiexec_version
                ERROR_VARIABLE _gd_mpiexec_version RESULT_VARIABLE _gd_rc)
# the launcher, and (to build programs against the library: gpudispatch.h
# includes mpi.h) the MPI's development package
if(_gd_mpiexec_version MATCHES "Open MPI|OpenRTE")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "openmpi-bin")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libopenmpi-dev, pkg-config")
elseif(_gd_mpiexec_version MATCHES "HYDRA")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "mpich")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "libmpich-dev, pkg-config")
endif()
include(CPack)
