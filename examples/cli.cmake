# Examples of the command and the demo (issue 5).
#   mandelbrot   the demo of scripts/demo.sh: tiles rendered by the workers
#   cuda_worker  a worker class running a CUDA kernel, built only when the
#                CUDA toolkit is found (it is never run by the tests)
#   worker.sh    a persistent worker for `gpudispatch run --worker-cmd`
add_executable(mandelbrot ${CMAKE_CURRENT_SOURCE_DIR}/mandelbrot.c)
find_package(ZLIB REQUIRED)
target_link_libraries(mandelbrot PRIVATE gpudispatch gpudispatch_ui ZLIB::ZLIB m)

option(GD_BUILD_CUDA_EXAMPLE "Build examples/cuda_worker.cu when a CUDA compiler is found" ON)
if(GD_BUILD_CUDA_EXAMPLE)
  include(CheckLanguage)
  # the toolkit's usual place, when nvcc is not on PATH
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
     AND EXISTS /usr/local/cuda/bin/nvcc)
    find_program(GD_NVCC_ON_PATH nvcc)
    if(NOT GD_NVCC_ON_PATH)
      set(ENV{CUDACXX} /usr/local/cuda/bin/nvcc)
    endif()
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # no GPU needed to build: Turing, Ampere, Hopper
      set(CMAKE_CUDA_ARCHITECTURES 75 80 90)
    endif()
    enable_language(CUDA)
    add_executable(cuda_worker ${CMAKE_CURRENT_SOURCE_DIR}/cuda_worker.cu)
    target_link_libraries(cuda_worker PRIVATE gpudispatch)
    message(STATUS "gpudispatch: building the CUDA example (${CMAKE_CUDA_COMPILER})")
  else()
    message(STATUS "gpudispatch: no CUDA compiler found: examples/cuda_worker.cu is not built")
  endif()
endif()
