# The REST benchmark's raw PKCS#11 baseline (tests/bench/rest_bench.sh drives it).
# Included from tests/bench/CMakeLists.txt with one line.
add_executable(rest_raw ${CMAKE_CURRENT_LIST_DIR}/rest_raw.c)
target_link_libraries(rest_raw PRIVATE PkgConfig::P11KIT Threads::Threads ${CMAKE_DL_LIBS})

# The engine's SignHash rate with SADs from the REST flow, through the gateway's client library.
add_executable(rest_engine ${CMAKE_CURRENT_LIST_DIR}/rest_engine.c)
target_link_libraries(rest_engine PRIVATE rssp_engine_client PkgConfig::CRYPTO Threads::Threads)

# A smoke run (1 s phases) so the benchmark keeps working; it measures nothing.
add_test(NAME bench_rest_smoke
  COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/rest_bench.py --smoke --build ${CMAKE_BINARY_DIR})
set_tests_properties(bench_rest_smoke PROPERTIES TIMEOUT 600
  ENVIRONMENT "RSSP_TEST_ROOT=${CMAKE_SOURCE_DIR}")
