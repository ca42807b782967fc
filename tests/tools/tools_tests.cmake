# Tests under tests/tools/ run the built `pneumo` executable: they get its path as PNEUMO_BINARY, and
# tests_cpu is built after it. Included from tests/CMakeLists.txt.
file(GLOB _pneumo_tool_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*_test.cpp)
set_source_files_properties(${_pneumo_tool_tests} PROPERTIES COMPILE_DEFINITIONS "PNEUMO_BINARY=\"$<TARGET_FILE:pneumo>\"")
if(TARGET tests_cpu AND TARGET pneumo)
  add_dependencies(tests_cpu pneumo)
endif()
