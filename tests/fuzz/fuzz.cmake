# libFuzzer targets (PNEUMO_FUZZ=ON, clang; included from cmake/Sanitizers.cmake): one executable
# fuzz_<name> per fuzz_*.cpp here, linked with the sanitized engine. tests/fuzz/run.sh runs them.
file(GLOB _fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.cpp)
if(NOT EXISTS ${CMAKE_SOURCE_DIR}/augment/dicom.h)  # the DICOM reader is not in this tree
  list(FILTER _fuzz_sources EXCLUDE REGEX "fuzz_dicom\\.cpp$")
endif()
foreach(_src ${_fuzz_sources})
  get_filename_component(_name ${_src} NAME_WE)
  add_executable(${_name} ${_src})
  target_link_libraries(${_name} PRIVATE pneumo_engine)
  target_compile_options(${_name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${_name} PRIVATE -fsanitize=fuzzer)
  list(APPEND PNEUMO_FUZZ_TARGETS ${_name})
endforeach()
add_custom_target(fuzz DEPENDS ${PNEUMO_FUZZ_TARGETS})
