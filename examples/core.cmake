add_executable(hello ${CMAKE_CURRENT_SOURCE_DIR}/hello.c)
target_link_libraries(hello PRIVATE gpudispatch)
