# The engine core: HSM layer and the signature activation module (sam.h).
# PKCS#11 types come from p11-kit's pkcs11.h (libp11.h does not include one): PkgConfig::P11KIT
# of the top-level CMakeLists.txt.
add_library(rssp_engine_core STATIC
  ${CMAKE_CURRENT_LIST_DIR}/sam.c
  ${CMAKE_CURRENT_LIST_DIR}/sam_decode.c
  ${CMAKE_CURRENT_LIST_DIR}/sam_activate.c
  ${CMAKE_CURRENT_LIST_DIR}/sam_approve.c
  ${CMAKE_CURRENT_LIST_DIR}/sam_sign.c
  ${CMAKE_CURRENT_LIST_DIR}/sam_restart.c
  ${CMAKE_CURRENT_LIST_DIR}/hsm.c
  ${CMAKE_CURRENT_LIST_DIR}/kak.c
  ${CMAKE_CURRENT_LIST_DIR}/sad.c
  ${CMAKE_CURRENT_LIST_DIR}/binding.c
  ${CMAKE_CURRENT_LIST_DIR}/x509.c
  ${CMAKE_CURRENT_LIST_DIR}/kvmap.c)
target_include_directories(rssp_engine_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(rssp_engine_core PUBLIC rssp_common rssp_proto PkgConfig::P11 PkgConfig::P11KIT PkgConfig::CRYPTO
  Threads::Threads ${CMAKE_DL_LIBS})
