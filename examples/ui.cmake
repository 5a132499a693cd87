# The dashboard's examples (issue 4): the three uses the design names.
foreach(ex basic_dashboard collect_results no_ui)
  add_executable(${ex} ${CMAKE_CURRENT_SOURCE_DIR}/${ex}.c)
  target_link_libraries(${ex} PRIVATE gpudispatch gpudispatch_ui)
endforeach()
