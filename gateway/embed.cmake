# cmake -DIN=openapi.json -DOUT=openapi_data.c [-DNAME=gw_openapi_json] -P embed.cmake: a file
# of the gateway (the OpenAPI document, the OAuth page) as C data NAME[] and NAME_len.
if(NOT NAME)
  set(NAME gw_openapi_json)
endif()
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
get_filename_component(src ${IN} NAME)
file(WRITE ${OUT} "/* generated from gateway/${src} */\nconst char ${NAME}[] = {\n${bytes}0x00};\nconst unsigned long ${NAME}_len = ${len};\n")
