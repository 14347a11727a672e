# cmake -DIN=openapi.json -DOUT=openapi_data.c -P embed.cmake: the OpenAPI document as C data.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* generated from gateway/openapi.json */\nconst char gw_openapi_json[] = {\n${bytes}0x00};\nconst unsigned long gw_openapi_json_len = ${len};\n")
