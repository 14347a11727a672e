# rssp-gateway: the REST front. Every gateway module but main.c goes into the library;
# a new module is added to this list.
set(RSSP_GATEWAY_SOURCES account_status.c admin.c auth.c auth_requests.c config.c
  conn_guard.c context.c credentials.c csc.c csc_v1.c csc_v2.c db.c deadline.c engine_health.c
  enrollments.c framing.c getters.c info.c loadcap.c login_name.c metrics.c oauth.c
  outbox.c ratelimit.c reply.c routes.c runtime.c secrets.c server.c sic.c signatures.c
  signing_common.c tenant.c users.c)

add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/openapi_data.c
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_CURRENT_SOURCE_DIR}/openapi.json
          -DOUT=${CMAKE_CURRENT_BINARY_DIR}/openapi_data.c -P ${CMAKE_CURRENT_SOURCE_DIR}/embed.cmake
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/openapi.json ${CMAKE_CURRENT_SOURCE_DIR}/embed.cmake
  COMMENT "embedding gateway/openapi.json")

# The signer's OAuth page (oauth.c): HTML template and stylesheet, served from 'self'.
foreach(asset oauth_page.html oauth_page.css)
  string(REPLACE "." "_" sym "gw_${asset}")
  add_custom_command(OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/${sym}.c
    COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_CURRENT_SOURCE_DIR}/${asset} -DNAME=${sym}
            -DOUT=${CMAKE_CURRENT_BINARY_DIR}/${sym}.c -P ${CMAKE_CURRENT_SOURCE_DIR}/embed.cmake
    DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${asset} ${CMAKE_CURRENT_SOURCE_DIR}/embed.cmake
    COMMENT "embedding gateway/${asset}")
  list(APPEND RSSP_GATEWAY_ASSETS ${CMAKE_CURRENT_BINARY_DIR}/${sym}.c)
endforeach()

add_library(rssp_gateway_lib STATIC ${RSSP_GATEWAY_SOURCES} ${CMAKE_CURRENT_BINARY_DIR}/openapi_data.c
  ${RSSP_GATEWAY_ASSETS})
target_include_directories(rssp_gateway_lib PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_compile_definitions(rssp_gateway_lib PRIVATE
  RSSP_VERSION="${PROJECT_VERSION}"
  RSSP_SOURCE_SCHEMA_DIR="${PROJECT_SOURCE_DIR}/schema")
target_link_libraries(rssp_gateway_lib PUBLIC rssp_common rssp_engine_client
  PkgConfig::MHD PkgConfig::JANSSON PkgConfig::PQ PkgConfig::SODIUM PkgConfig::CRYPTO
  PkgConfig::CURL Threads::Threads m)

add_executable(rssp-gateway main.c)
target_link_libraries(rssp-gateway PRIVATE rssp_gateway_lib)
