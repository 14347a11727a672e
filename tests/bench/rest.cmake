# The REST benchmark's raw PKCS#11 baseline (tests/bench/rest_bench.sh drives it).
# Included from tests/bench/CMakeLists.txt with one line.
pkg_check_modules(P11KIT_REST REQUIRED IMPORTED_TARGET p11-kit-1)
add_executable(rest_raw ${CMAKE_CURRENT_LIST_DIR}/rest_raw.c)
target_compile_options(rest_raw PRIVATE $<TARGET_PROPERTY:PkgConfig::P11KIT_REST,INTERFACE_COMPILE_OPTIONS>)
target_include_directories(rest_raw PRIVATE $<TARGET_PROPERTY:PkgConfig::P11KIT_REST,INTERFACE_INCLUDE_DIRECTORIES>)
target_link_libraries(rest_raw PRIVATE Threads::Threads ${CMAKE_DL_LIBS})

# The engine's SignHash rate with SADs from the REST flow, through the gateway's client library.
if(TARGET rssp_engine_client)
  add_executable(rest_engine ${CMAKE_CURRENT_LIST_DIR}/rest_engine.c)
  target_link_libraries(rest_engine PRIVATE rssp_engine_client PkgConfig::CRYPTO Threads::Threads)
endif()

# A smoke run (1 s phases) so the benchmark keeps working; it measures nothing.
if(TARGET rest_engine AND TARGET rssp-gateway)
  add_test(NAME bench_rest_smoke
    COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/rest_bench.py --smoke --build ${CMAKE_BINARY_DIR})
  set_tests_properties(bench_rest_smoke PROPERTIES TIMEOUT 600
    ENVIRONMENT "RSSP_TEST_ROOT=${CMAKE_SOURCE_DIR}")
endif()
