# The engine's transport, configuration, audit log and main; the gateway's client library.
# Included from engine/CMakeLists.txt (after core.cmake).

# The one gRPC client call (grpc_unary.h): the client library's calls and the daemon's
# `probe` subcommand. Linked PRIVATE: its directory (engine/) stays off the gateway's
# include path.
add_library(rssp_grpc_unary STATIC grpc_unary.c)
target_include_directories(rssp_grpc_unary PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rssp_grpc_unary PUBLIC rssp_common PkgConfig::GRPC)

# The client library the gateway links.
add_library(rssp_engine_client STATIC client/engine_client.c)
target_include_directories(rssp_engine_client PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/client)
target_link_libraries(rssp_engine_client PUBLIC rssp_proto rssp_common PkgConfig::GRPC
  PRIVATE rssp_grpc_unary)

# The server side, without sam: transport, configuration, audit. Tests link it directly.
add_library(rssp_engine_server STATIC rpc_server.c config.c audit.c)
target_include_directories(rssp_engine_server PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(rssp_engine_server PUBLIC rssp_common PkgConfig::GRPC PkgConfig::CRYPTO
  Threads::Threads PRIVATE rssp_grpc_unary)

add_executable(rssp-engine main.c)
target_link_libraries(rssp-engine PRIVATE rssp_engine_server rssp_engine_core)
