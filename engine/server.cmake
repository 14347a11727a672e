# The engine's transport, configuration, audit log and main; the gateway's client library.
# Included from engine/CMakeLists.txt (after core.cmake).

# The client library the gateway links.
add_library(rssp_engine_client STATIC client/engine_client.c)
target_include_directories(rssp_engine_client PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/client)
target_link_libraries(rssp_engine_client PUBLIC rssp_proto rssp_common PkgConfig::GRPC)

# The server side, without sam: transport, configuration, audit. Tests link it directly.
add_library(rssp_engine_server STATIC rpc_server.c config.c audit.c)
target_include_directories(rssp_engine_server PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rssp_engine_server PUBLIC rssp_common PkgConfig::GRPC PkgConfig::CRYPTO
  Threads::Threads)

add_executable(rssp-engine main.c)
target_link_libraries(rssp-engine PRIVATE rssp_engine_server rssp_engine_core)
