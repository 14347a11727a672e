# rssp-gateway: the REST front. Every gateway/*.c except main.c goes into the library,
# so that new modules of other engineers are picked up without editing this file.
file(GLOB RSSP_GATEWAY_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
list(REMOVE_ITEM RSSP_GATEWAY_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/main.c)

add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/openapi_data.c
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_CURRENT_SOURCE_DIR}/openapi.json
          -DOUT=${CMAKE_CURRENT_BINARY_DIR}/openapi_data.c -P ${CMAKE_CURRENT_SOURCE_DIR}/embed.cmake
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/openapi.json ${CMAKE_CURRENT_SOURCE_DIR}/embed.cmake
  COMMENT "embedding gateway/openapi.json")

add_library(rssp_gateway_lib STATIC ${RSSP_GATEWAY_SOURCES} ${CMAKE_CURRENT_BINARY_DIR}/openapi_data.c)
target_include_directories(rssp_gateway_lib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(rssp_gateway_lib PRIVATE
  RSSP_VERSION="${PROJECT_VERSION}"
  RSSP_SOURCE_SCHEMA_DIR="${PROJECT_SOURCE_DIR}/schema")
target_link_libraries(rssp_gateway_lib PUBLIC rssp_common
  PkgConfig::MHD PkgConfig::JANSSON PkgConfig::PQ PkgConfig::SODIUM PkgConfig::CRYPTO
  PkgConfig::CURL Threads::Threads m rssp_engine_client)

if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/main.c)
  add_executable(rssp-gateway main.c)
  target_link_libraries(rssp-gateway PRIVATE rssp_gateway_lib)
endif()
