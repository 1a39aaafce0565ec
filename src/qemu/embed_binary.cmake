# Turns a binary file into a C++ header: cmake -DIN=x.bin -DOUT=x.h -DNAME=kData -P embed_binary.cmake
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\n#pragma once\nstatic const unsigned char ${NAME}[] = {${bytes}};\n")
