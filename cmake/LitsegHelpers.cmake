# litseg_add_library(<module> SOURCES ... [DEPS public deps] [PRIVATE_DEPS ...])
# Builds the static library litseg_<module> (alias litseg::<module>) with the public
# headers under include/.
function(litseg_add_library module)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(litseg_${module} STATIC ${ARG_SOURCES})
  add_library(litseg::${module} ALIAS litseg_${module})
  target_include_directories(litseg_${module} PUBLIC ${PROJECT_SOURCE_DIR}/include
                                               PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(litseg_${module} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_options(litseg_${module} PRIVATE -Wall -Wextra)
endfunction()

# litseg_add_test(<name> SOURCES ... DEPS ... [LABELS ...] [TIMEOUT s])
# One GoogleTest program per module under build/tests; every test is registered with ctest.
# Tests that need ../shared call LITSEG_REQUIRE_SHARED(), which skips with the reason;
# ctest reports those as skipped, not passed.
function(litseg_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 600)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} litseg_test_common)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  # gtest_discover_tests writes every list element as a separate argument of
  # set_tests_properties: an empty LABELS value would swallow the next property name, and a
  # multi-entry ENVIRONMENT keeps only its first entry. So: one environment variable (the
  # one tests read), and LABELS only when given (a single label).
  set(test_properties
      TIMEOUT ${ARG_TIMEOUT}
      SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
      ENVIRONMENT "LITSEG_SHARED_DIR=${LITSEG_SHARED_DIR}")
  if(ARG_LABELS)
    list(APPEND test_properties LABELS "${ARG_LABELS}")
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES ${test_properties})
endfunction()

if(LITSEG_BUILD_TESTS AND NOT TARGET litseg_test_common)
  # The shared test helpers and main() (which selects the BLAS kernels as the programs do).
  add_library(litseg_test_common STATIC ${PROJECT_SOURCE_DIR}/tests/common/test_main.cc)
  target_include_directories(litseg_test_common PUBLIC ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(litseg_test_common PUBLIC litseg::core GTest::gtest)
endif()
