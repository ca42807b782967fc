# Sanitizer and fuzzing builds. Included once from the root CMakeLists.txt before any target:
#   -DPNEUMO_SANITIZE=address,undefined   instruments every C++ file (and links the runtimes); any report aborts
#   -DPNEUMO_FUZZ=ON                      (clang only) also builds the libFuzzer targets of tests/fuzz/ as
#                                         fuzz_<name>, with the engine compiled for coverage (fuzzer-no-link)
#   -DPNEUMO_FUZZ=ON -DPNEUMO_SANITIZE=none   the same targets without ASan/UBSan: several times the
#                                         executions per second for long campaigns (crashes still abort;
#                                         out-of-bounds reads that do not fault go unseen: keep the ASan runs too)
# Both are for CPU builds (PNEUMO_CUDA=OFF): nvcc does not take these flags.
set(PNEUMO_SANITIZE "" CACHE STRING "Sanitizers for every C++ file, e.g. address,undefined (empty: none)")
option(PNEUMO_FUZZ "Build the libFuzzer targets of tests/fuzz (clang only; implies address,undefined)" OFF)

set(_pneumo_no_sanitizers OFF)
if(PNEUMO_SANITIZE STREQUAL "none")
  set(_pneumo_no_sanitizers ON)
  set(PNEUMO_SANITIZE "")
endif()

if(PNEUMO_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PNEUMO_FUZZ=ON needs clang (libFuzzer): -DCMAKE_CXX_COMPILER=clang++-14")
  endif()
  if(_pneumo_no_sanitizers)
    message(STATUS "pneumo: fuzz targets without sanitizers (throughput build)")
  elseif(NOT PNEUMO_SANITIZE)
    set(PNEUMO_SANITIZE "address,undefined")
  endif()
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=fuzzer-no-link>)
  # After the root file has defined pneumo_engine.
  cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL include ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz.cmake)
endif()

if(PNEUMO_SANITIZE)
  if(PNEUMO_WITH_CUDA OR PNEUMO_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PNEUMO_SANITIZE is for CPU builds: add -DPNEUMO_CUDA=OFF")
  endif()
  set(PNEUMO_CUDA OFF CACHE STRING "" FORCE)
  message(STATUS "pneumo: sanitizers ${PNEUMO_SANITIZE}")
  # -fno-sanitize-recover: a UBSan report fails the test instead of printing and going on.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-fsanitize=${PNEUMO_SANITIZE}>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-sanitize-recover=all>
                      $<$<COMPILE_LANGUAGE:CXX>:-fno-omit-frame-pointer>)
  add_link_options(-fsanitize=${PNEUMO_SANITIZE})
  # stb_image 2.27's JPEG bit buffer shifts by >= 32 on a scan cut short by a marker (nothings/stb#1293, fixed
  # upstream in 2.28; Debian ships 2.27): that one check is off for stb's own file, every other stays on.
  # gcc 12 ignores -fno-sanitize=shift-exponent alone (a 3-line test still reported the shift by 33), so with
  # gcc both shift checks are off there; clang takes the exponent check alone.
  set_source_files_properties(${CMAKE_SOURCE_DIR}/augment/stb_impl.cpp PROPERTIES COMPILE_OPTIONS
                              $<IF:$<CXX_COMPILER_ID:GNU>,-fno-sanitize=shift,-fno-sanitize=shift-exponent>)
endif()
